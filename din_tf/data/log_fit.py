"""Training-split statistics of `LogSamples`: the schema's fit (vocabularies,
numeric standardization) and the embedding rows' frequencies.

Both look at the training data as the input pipeline feeds it: a behaviour
step counts once for every training row whose window reads it, and a row
reads only its `max_length` most recent steps (what `make_log_dataset`
keeps). Stored steps no training window reads (steps kept for later splits,
or cut by truncation) are neither fitted nor counted, so a value seen only
there is out of vocabulary rather than an untrained row.
"""

import numpy as np
import tensorflow as tf

from din_tf.data.log_samples import LogSamples
from din_tf.schema.encoder import FeatureEncoder
from din_tf.schema.vocabulary import fit_vocabularies


def kept_windows(part, max_length):
    """(start, length) int64 of each row's window after keeping its
    `max_length` most recent steps."""
    start = np.asarray(part.start, np.int64)
    length = np.asarray(part.length, np.int64)
    cut = np.maximum(length - max_length, 0)
    return start + cut, length - cut


def window_coverage(part, max_length, steps):
    """int64 [steps]: how many rows' kept windows read each stored step
    (a difference array, so windows are never expanded)."""
    start, length = kept_windows(part, max_length)
    diff = np.zeros(steps + 1, np.int64)
    np.add.at(diff, start, 1)
    np.add.at(diff, start + length, -1)
    return np.cumsum(diff[:-1])


def _stored_steps(part, seq):
    return int(np.asarray(part.steps[seq.item_feature]).shape[0])


def fit_schema(train: LogSamples):
    """`(resolved schema, vocabularies)` fitted on the training split.

    Each feature's values are its column plus, for candidate features that
    are steps of a behaviour sequence, the stored steps at least one training
    window reads. Negative pools are not part of the fit (a pool item is an
    item of the log, not of the training rows).
    """
    if not isinstance(train, LogSamples):
        raise ValueError(f"fit_schema: argument 'train' expected a LogSamples, got "
                         f"{type(train).__name__}")
    schema = train.schema
    values = {f.name: [np.asarray(train.columns[f.name])] for f in schema.features}
    for seq in schema.sequences:
        part = train.sequences[seq.name]
        covered = window_coverage(part, seq.max_length, _stored_steps(part, seq)) > 0
        for name in seq.features:
            values[name].append(np.asarray(part.steps[name])[covered])
    return fit_vocabularies(schema, values)


def _as_tensor(raw):
    raw = np.asarray(raw)
    if raw.dtype.kind == "U":
        raw = np.char.encode(raw, "utf-8")
    return tf.constant(raw)


def _count_rows(counts, encoder, feature, raw, weights, chunk_size):
    """Adds the rows `raw` encodes to, each `weights` times (1 if None)."""
    for begin in range(0, raw.shape[0], chunk_size):
        rows = encoder.encode_ids(feature, _as_tensor(raw[begin:begin + chunk_size])).numpy()
        if weights is None:
            counts += np.bincount(rows.reshape(-1), minlength=counts.size)[:counts.size]
            continue
        w = weights[begin:begin + chunk_size].reshape((-1,) + (1,) * (rows.ndim - 1))
        w = np.broadcast_to(w, rows.shape).reshape(-1).astype(np.float64)
        counted = np.bincount(rows.reshape(-1), weights=w, minlength=counts.size)
        counts += np.rint(counted[:counts.size]).astype(np.int64)


def table_frequencies(train: LogSamples, encoder, chunk_size: int = 65536):
    """`{f"{table}_embedding": int64 [table rows]}`: the training occurrences
    of every row of every embedding table (the mini-batch-aware L2's n_j; the
    keys are the embedding layers' names).

    Every feature using a table adds to it: user / candidate / context columns
    once per row, behaviour steps once per training window reading them, each
    value of a multi-valued feature. Values are encoded with `encoder` (in
    chunks of `chunk_size`), so unseen values count on their OOV rows; row 0
    (padding, and out-of-range integer ids) is not counted.
    """
    if not isinstance(train, LogSamples):
        raise ValueError(f"table_frequencies: argument 'train' expected a LogSamples, got "
                         f"{type(train).__name__}")
    if not isinstance(encoder, FeatureEncoder):
        raise ValueError(f"table_frequencies: argument 'encoder' expected a FeatureEncoder, got "
                         f"{type(encoder).__name__}")
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"table_frequencies: argument 'chunk_size' expected a positive int, "
                         f"got {chunk_size!r}")
    schema = encoder.schema
    counts = {table: np.zeros(members[0].rows, np.int64)
              for table, members in schema.tables().items()}
    for feature in schema.categorical_features:
        _count_rows(counts[feature.table_name], encoder, feature,
                    np.asarray(train.columns[feature.name]), None, chunk_size)
    for seq in schema.sequences:
        part = train.sequences[seq.name]
        cover = window_coverage(part, seq.max_length, _stored_steps(part, seq))
        read = np.flatnonzero(cover)
        for name in seq.features:
            feature = schema.feature(name)
            _count_rows(counts[feature.table_name], encoder, feature,
                        np.asarray(part.steps[name])[read], cover[read], chunk_size)
    for table_counts in counts.values():
        table_counts[0] = 0
    return {f"{table}_embedding": c for table, c in counts.items()}


__all__ = ["fit_schema", "kept_windows", "table_frequencies", "window_coverage"]
