"""Reader for the 5-core sequence format used by S3-Rec-style releases:
`<name>.txt` with one user per line (`user item_1 ... item_n`, items in time
order, integer ids) and `<name>_item2attributes.json` (`{"item": [attr, ...]}`,
brand then category-path entries).

The result is `Reviews` (times = position in the sequence, since the release
drops timestamps) plus `{item: category}` with category = the item's **last**
attribute, i.e. the leaf of its last category path (the DIN rule); the flat
attribute list cannot recover the DIEN rule (first path), so both protocols
get this category.
"""

import json

import numpy as np

from din_tf.data._io import DataFormatError, MalformedLines, describe, iter_lines, \
    open_binary, require_nonempty
from din_tf.data.amazon import Reviews


def read_sequences(path, skip_malformed=False):
    users, items, times = [], [], []
    with MalformedLines(path, skip_malformed) as bad:
        for number, text in iter_lines(path):
            tokens = text.split()
            if not tokens:
                continue
            if len(tokens) < 2 or not all(t.isdigit() for t in tokens):
                bad.handle(number, f"expected 'user item_1 ... item_n' (integer ids, at least one "
                                   f"item), got {describe(text)}")
                continue
            users.extend([tokens[0]] * (len(tokens) - 1))
            items.extend(tokens[1:])
            times.extend(range(len(tokens) - 1))
    require_nonempty(path, len(users), "user sequences")
    return Reviews(users, items, np.full(len(users), np.nan), np.asarray(times, np.int64),
                   str(path))


def read_item_attributes(path):
    """`{item: [attribute ids]}`; the whole file is one JSON object."""
    with open_binary(path) as f:
        raw = f.read()
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DataFormatError(path, None, f"not valid UTF-8 ({e})") from None
    except json.JSONDecodeError as e:
        raise DataFormatError(path, e.lineno, f"expected a JSON object of item -> attribute "
                                              f"list, got invalid JSON ({e.msg}, column {e.colno})"
                              ) from None
    if not isinstance(obj, dict):
        raise DataFormatError(path, None, f"expected a JSON object, got {type(obj).__name__}")
    for item, attrs in obj.items():
        if not isinstance(attrs, list):
            raise DataFormatError(path, None, f"item {item!r}: expected a list of attribute ids, "
                                              f"got {describe(attrs)}")
    require_nonempty(path, len(obj), "items")
    return obj


def read_five_core(sequences_path, attributes_path, skip_malformed=False):
    """`(Reviews, {item: category})`; items without attributes are absent from the
    map (the DIN protocol then reports them)."""
    reviews = read_sequences(sequences_path, skip_malformed)
    attrs = read_item_attributes(attributes_path)
    return reviews, {item: str(a[-1]) for item, a in attrs.items() if a}
