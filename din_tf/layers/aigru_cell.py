"""AIGRU: attention scales the GRU's input (DIEN paper, ablation)."""

from din_tf.api_export import din_tf_export
from din_tf.layers.gru_cell import GRUCell


@din_tf_export("din_tf.layers.AIGRUCell")
class AIGRUCell(GRUCell):
    """A plain GRU step on the attention-scaled input `a * x_t`.

    The DIEN repo's `DIN-V2-gru-att-gru` gets the same effect by running a TF1
    `GRUCell` over the "list" attention output (each step times its weight).
    Weights, options and masking as `GRUCell`.
    """

    uses_attention = True
    scales_input = True
