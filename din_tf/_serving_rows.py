"""Building TF-Serving REST bodies (row format) from per-row feature dicts,
for both exported signatures (integer rows and raw values).

TF-Serving stacks the instances of a request into one tensor per input, so
every instance must give each input the same shape: behaviour sequences are
cut to each row's length and padded to one width per sequence, and
multi-valued features are padded to one number of values per key. What fills
the padding is the caller's (0 for integer rows, the feature's raw padding
value "" / -1 for raw values); the model ignores it either way.
"""

import numpy as np

SIGNATURE_NAME = "serving_default"
OUTPUT_NAME = "probability"


def as_row_dicts(rows, where="rows"):
    """`rows` as a list of per-row dicts: a list of dicts as it is, or one
    dict of batched arrays split along its first axis."""
    if isinstance(rows, dict):
        sizes = {np.asarray(v).shape[0] for v in rows.values() if np.ndim(v) > 0}
        if len(sizes) != 1:
            raise ValueError(f"Invalid {where}: a dict of batched arrays needs one batch size, "
                             f"received sizes {sorted(sizes)}.")
        count = sizes.pop()
        return [{k: np.asarray(v)[i] for k, v in rows.items()} for i in range(count)]
    rows = list(rows)
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"Invalid {where}[{index}]: expected a dict of features, received "
                             f"{type(row).__name__}.")
    return rows


def plain(value):
    """NumPy arrays and scalars as nested Python lists and scalars (ragged
    lists stay ragged)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def sequence_widths(schema, lengths, pad_to, min_width=None):
    """{sequence name: padded width}: the longest length of the request, or
    `pad_to` (an int applying to every sequence) when given. The width is at
    least `min_width(sequence)` (default 0): a sequence with multi-valued
    steps needs one step for its JSON nesting to give the input its rank."""
    widths = {}
    for seq in schema.sequences:
        longest = max(lengths[seq.name] + [min_width(seq) if min_width else 0])
        if pad_to is not None:
            if not isinstance(pad_to, int) or isinstance(pad_to, bool) or pad_to < longest:
                raise ValueError(f"Invalid pad_to={pad_to!r}; expected an int >= the longest "
                                 f"{seq.length} ({longest}), or None.")
            longest = pad_to
        widths[seq.name] = longest
    return widths


def build_instances(schema, rows, lengths, widths, padding):
    """The stacked-shape instances of `rows` (values already plain Python
    and checked): single values as they are, multi-valued features padded to
    the request's most values (at least 1) with `padding(feature)`, sequence
    steps cut to the row's length and padded to `widths[sequence]`."""
    values_width = {}
    for f in schema.categorical_features:
        if f.multi_valued:
            values_width[f.name] = max([len(row[f.name]) for row in rows] + [1])
    for seq in schema.sequences:
        for name, key in zip(seq.features, seq.step_keys):
            if schema.feature(name).multi_valued:
                values_width[key] = max(
                    [len(step) for row, n in zip(rows, lengths[seq.name])
                     for step in row[key][:n]] + [1])

    def padded(values, width, fill):
        return list(values) + [fill] * (width - len(values))

    instances = []
    for index, row in enumerate(rows):
        instance = {}
        for f in schema.features:
            value = row[f.name]
            if f.name in values_width:
                value = padded(value, values_width[f.name], padding(f))
            instance[f.name] = value
        for seq in schema.sequences:
            length, width = lengths[seq.name][index], widths[seq.name]
            for name, key in zip(seq.features, seq.step_keys):
                feature = schema.feature(name)
                steps = row[key][:length]
                if key in values_width:
                    steps = [padded(s, values_width[key], padding(feature)) for s in steps]
                    fill = [padding(feature)] * values_width[key]
                else:
                    fill = padding(feature)
                instance[key] = padded(steps, width, fill)
            instance[seq.length] = length
        instances.append(instance)
    return instances
