"""An embedding table that reads only the rows a batch looks up."""

import keras
import tensorflow as tf
from keras import ops

from din_tf._argument_checks import check_choice, check_positive_int
from din_tf.api_export import din_tf_export

OUT_OF_RANGE_POLICIES = ("map_to_zero", "error")


@din_tf_export("din_tf.layers.RowEmbedding")
class RowEmbedding(keras.layers.Layer):
    """`ids -> table[ids]` with a sparse (IndexedSlices) gradient.

    `keras.layers.Embedding` converts the whole table to a tensor before the
    gather, so a sparse update copies the table every step in graph mode; this
    layer gathers straight from the variable (a resource gather), and never
    autocasts the table under mixed precision (only the gathered rows are cast).

    The table is `[vocab_size, dim]`, Glorot-uniform over the whole matrix by
    default, exactly TF1's variable-scope default the originals rely on
    (docs/original_code.md#initial-weights; the range is tiny for large vocabularies).

    Ids outside `[0, vocab_size)`: with `out_of_range="map_to_zero"` (default)
    they read row 0, which is what the originals' data pipelines do with
    unknown ids (row 0 is `default_mid`/`default_cat` in the DIEN repo); with
    `"error"` they raise InvalidArgumentError.

    Masking: none; id 0 is a real row (the originals pad with it), so padding
    is handled by the models through lengths/masks.

    Args:
        vocab_size: number of rows.
        dim: row width.
        embeddings_initializer: initializer of the table.
        out_of_range: "map_to_zero" or "error".
    """

    def __init__(self, vocab_size, dim, embeddings_initializer="glorot_uniform",
                 out_of_range="map_to_zero", **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.dim = check_positive_int("dim", dim)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.out_of_range = check_choice("out_of_range", out_of_range, OUT_OF_RANGE_POLICIES)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            shape=(self.vocab_size, self.dim), initializer=self.embeddings_initializer,
            autocast=False, name="embeddings")

    def valid_ids(self, ids):
        """Applies the out-of-range policy; returns int32 ids in range."""
        ids = ops.cast(ids, "int32")
        if self.out_of_range == "error":
            tf.debugging.assert_non_negative(ids, message=f"{self.name}: negative id")
            tf.debugging.assert_less(
                ids, self.vocab_size,
                message=f"{self.name}: id >= vocab_size={self.vocab_size}")
            return ids
        in_range = ops.logical_and(ids >= 0, ids < self.vocab_size)
        return ops.where(in_range, ids, ops.zeros_like(ids))

    def gather(self, ids):
        """`table[ids]` for ids already in range, in the table's dtype.

        Under `ParameterServerStrategy` the table lives on parameter servers,
        whole or split in row shards (a `ShardedVariable`, read shard by
        shard). There each distinct id is read once, and the gradient holds
        one slice per distinct row: the network carries the batch's distinct
        rows, both ways, not one row per occurrence (`tf.gather` on a
        `ShardedVariable` would also read every shard into one tensor first).
        """
        table = self.embeddings.value
        sharded = isinstance(table, tf.__internal__.distribute.ShardedVariable)
        if not sharded and not isinstance(tf.distribute.get_strategy(),
                                          tf.distribute.experimental.ParameterServerStrategy):
            return tf.gather(table, ids)
        distinct, position = tf.unique(tf.reshape(ids, [-1]))
        rows = tf.nn.embedding_lookup(table, distinct) if sharded else tf.gather(table, distinct)
        rows = tf.gather(rows, position)
        return tf.reshape(rows, tf.concat([tf.shape(ids), tf.shape(rows)[1:]], axis=0))

    def call(self, ids):
        return ops.cast(self.gather(self.valid_ids(ids)), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            dim=self.dim,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
            out_of_range=self.out_of_range,
        )
        return config
