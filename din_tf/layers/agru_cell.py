"""AGRU: attention replaces the update gate (DIEN paper eq. 11)."""

import tensorflow as tf

from din_tf.api_export import din_tf_export
from din_tf.layers.gru_cell import GRUCell


@din_tf_export("din_tf.layers.AGRUCell")
class AGRUCell(GRUCell):
    """GRU whose state update is driven by the attention weight `a` [B, 1].

    `h' = (1 - a) * h + a * c`; the update gate is computed but unused. This is
    the DIEN repo's `QAAttGRUCell` (model `DIN-V2-gru-qa-attGru`) and matches
    the paper. Weights, options and masking as `GRUCell`.
    """

    uses_attention = True

    def keep(self, update, attention):
        return 1.0 - attention

    def keep_gradients(self, d_keep, update, attention):
        return None, -tf.reduce_sum(d_keep, axis=-1, keepdims=True)
