"""`FeatureEncoder`: raw feature values → the rows and floats a model reads."""

import keras
import numpy as np
import tensorflow as tf

from din_tf.api_export import din_tf_export
from din_tf.schema.features import FeatureSchema
from din_tf.schema.vocabulary import as_lists


@din_tf_export("din_tf.schema.FeatureEncoder")
class FeatureEncoder(keras.layers.Layer):
    """Maps a dict of raw values (strings / int64 ids, floats) to the dict a
    schema-built model reads (int32 rows, float32 numerics, int32 lengths).

    It runs in the tf.data pipeline for training and inside the exported
    SavedModel for serving, so both apply the same lookups: Keras
    `StringLookup` / `IntegerLookup` on the fitted vocabularies (unseen values
    → the OOV rows 1..num_oov), `Hashing` (rows 1..size), or integer ids kept
    as they are (outside [0, size) → row 0). Row 0 is padding: sequence steps
    past a row's length and the padding value of multi-valued features
    ("" / -1) are set to 0 whatever they hold, so a score never depends on
    what fills the padding.

    Inputs per feature (B rows, T steps, V values):
        user / candidate / context categorical: [B] (or [B, V] multi-valued);
        sequence step keys and negative keys: [B, T] (or [B, T, V]);
        sequence length keys: [B] int; numeric: [B] float.
    Keys the schema does not name are ignored. Masking: none (returns plain
    tensors; lengths are passed through for the model to mask with).

    Args:
        schema: a resolved `FeatureSchema` (or its config).
        vocabularies: {table: list of known raw values} for "vocabulary"
            tables (from `fit_vocabularies`).
    """

    def __init__(self, schema, vocabularies=None, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.schema = FeatureSchema.from_config(schema)
        self.schema.check_resolved("FeatureEncoder")
        self.vocabularies = {t: list(v) for t, v in as_lists(vocabularies or {}).items()}
        self._lookups = {}
        for table, members in self.schema.tables().items():
            feature = members[0]
            if feature.lookup == "vocabulary":
                values = self.vocabularies.get(table)
                if values is None:
                    raise ValueError(f"FeatureEncoder: no vocabulary for table {table!r} "
                                     f"(feature {feature.name!r}).")
                layer_type = (keras.layers.StringLookup if feature.dtype == "string"
                              else keras.layers.IntegerLookup)
                vocabulary = (np.asarray(values, dtype=object).astype(str)
                              if feature.dtype == "string" else np.asarray(values, np.int64))
                self._lookups[table] = layer_type(
                    vocabulary=vocabulary, num_oov_indices=feature.num_oov, mask_token=None,
                    output_mode="int", name=f"{table}_lookup")
            elif feature.lookup == "hashing":
                self._lookups[table] = keras.layers.Hashing(feature.size, name=f"{table}_hash")
        self._sequence_of_key = {}
        for seq in self.schema.sequences:
            for name, key in zip(seq.features + seq.features,
                                 seq.step_keys + seq.negative_step_keys):
                self._sequence_of_key[key] = (seq, name)

    def build(self, input_shape=None):
        # The lookup tables are made in __init__; nothing depends on shapes.
        self.built = True

    def raw_keys(self):
        """Every raw input key: features, then per sequence its steps, length and
        negatives."""
        keys = [f.name for f in self.schema.features]
        for seq in self.schema.sequences:
            keys += list(seq.step_keys) + [seq.length] + list(seq.negative_step_keys)
        return keys

    def lookup_tables(self):
        """The `tf.lookup` tables of the fitted vocabularies, one per
        "vocabulary" table: a SavedModel that runs this encoder must track
        them so that it saves (and restores) the vocabularies."""
        return [layer.lookup_table for layer in self._lookups.values()
                if getattr(layer, "lookup_table", None) is not None]

    def encode_ids(self, feature, raw):
        """Raw values of `feature` (any shape) → int32 rows."""
        table = feature.table_name
        if feature.lookup == "integer":
            ids = tf.cast(raw, tf.int64)
            ids = tf.where((ids >= 0) & (ids < feature.size), ids, tf.zeros_like(ids))
            return tf.cast(ids, tf.int32)
        if feature.dtype == "string":
            raw = tf.convert_to_tensor(raw, tf.string)
        else:
            raw = tf.cast(raw, tf.int64)
        rows = tf.cast(self._lookups[table](raw), tf.int32) + 1
        if feature.multi_valued:
            rows = tf.where(tf.equal(raw, feature.padding_value), tf.zeros_like(rows), rows)
        return rows

    def call(self, raw):
        out = {}
        for feature in self.schema.features:
            if feature.name not in raw:
                continue
            value = raw[feature.name]
            if feature.kind == "numeric":
                out[feature.name] = ((tf.cast(value, tf.float32) - feature.mean) / feature.std)
            else:
                out[feature.name] = self.encode_ids(feature, value)
        for seq in self.schema.sequences:
            lengths = raw.get(seq.length)
            if lengths is not None:
                lengths = tf.cast(lengths, tf.int32)
                out[seq.length] = lengths
            for key in seq.step_keys + seq.negative_step_keys:
                if key not in raw:
                    continue
                _, name = self._sequence_of_key[key]
                rows = self.encode_ids(self.schema.feature(name), raw[key])
                if lengths is not None:
                    steps = tf.shape(rows)[1]
                    real = tf.range(steps)[None, :] < lengths[:, None]
                    if len(rows.shape) == 3:
                        real = real[:, :, None]
                    rows = tf.where(real, rows, tf.zeros_like(rows))
                out[key] = rows
        return out

    def get_config(self):
        config = super().get_config()
        config.update(schema=self.schema.get_config(), vocabularies=self.vocabularies)
        return config
