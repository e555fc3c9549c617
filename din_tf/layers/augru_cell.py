"""AUGRU: attention scales the update gate (DIEN's interest evolution cell)."""

import tensorflow as tf

from din_tf._argument_checks import check_choice
from din_tf.api_export import din_tf_export
from din_tf.layers.gru_cell import GRUCell

AUGRU_GATES = ("as_coded", "paper")


@din_tf_export("din_tf.layers.AUGRUCell")
class AUGRUCell(GRUCell):
    """GRU with an attentional update gate; `a` [B, 1] is the step's weight.

    `gate="as_coded"` (default) is the DIEN repo's `VecAttGRUCell`:
    `u~ = (1 - a) * u; h' = u~ * h + (1 - u~) * c` (u weighs the old state), so
    a -> 0 gives a plain GRU step and a -> 1 replaces the state by the candidate.

    `gate="paper"` is DIEN paper eq. 12–13: with the candidate weight
    `u_p = 1 - u`, `u~ = a * u_p; h' = (1 - u~) * h + u~ * c`, so a -> 0 freezes
    the state and a -> 1 is a plain GRU step
    (docs/original_code.md#augru-as-coded-and-as-in-the-paper; ai-matrix issue 103).

    Weights, other options and masking as `GRUCell`.
    """

    uses_attention = True

    def __init__(self, units, gate="as_coded", **kwargs):
        super().__init__(units, **kwargs)
        self.gate = check_choice("gate", gate, AUGRU_GATES)

    def keep(self, update, attention):
        if self.gate == "as_coded":
            return (1.0 - attention) * update
        return 1.0 - attention * (1.0 - update)

    def keep_gradients(self, d_keep, update, attention):
        if self.gate == "as_coded":
            d_update, d_attention = d_keep * (1.0 - attention), -d_keep * update
        else:
            d_update, d_attention = d_keep * attention, d_keep * (update - 1.0)
        return d_update, tf.reduce_sum(d_attention, axis=-1, keepdims=True)

    def get_config(self):
        config = super().get_config()
        config["gate"] = self.gate
        return config
