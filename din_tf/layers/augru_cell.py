"""AUGRU: attention scales the update gate (DIEN's interest evolution cell)."""

from din_tf.api_export import din_tf_export
from din_tf.layers._checks import check_choice
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
    the state and a -> 1 is a plain GRU step (spec §3.2; ai-matrix issue 103).

    Weights, other options and masking as `GRUCell`.
    """

    uses_attention = True

    def __init__(self, units, gate="as_coded", **kwargs):
        super().__init__(units, **kwargs)
        self.gate = check_choice("gate", gate, AUGRU_GATES)

    def update(self, state, candidate, update, attention):
        if self.gate == "as_coded":
            keep = (1.0 - attention) * update
        else:
            keep = 1.0 - attention * (1.0 - update)
        return keep * state + (1.0 - keep) * candidate

    def get_config(self):
        config = super().get_config()
        config["gate"] = self.gate
        return config
