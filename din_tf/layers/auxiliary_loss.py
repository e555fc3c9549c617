"""DIEN's auxiliary loss: supervise each interest state with the next click."""

import keras
from keras import ops

from din_tf._argument_checks import check_choice, check_rank
from din_tf.api_export import din_tf_export
from din_tf.layers.auxiliary_network import AuxiliaryNetwork

AUX_REDUCTIONS = ("all_cells", "valid_cells")


@din_tf_export("din_tf.layers.AuxiliaryLoss")
class AuxiliaryLoss(keras.layers.Layer):
    """`L_aux` of the DIEN repo's `auxiliary_loss`
    (docs/original_code.md#reduction-of-the-auxiliary-loss).

    With `p(h, e)` the click column of `AuxiliaryNetwork` (one set of weights
    for both calls):

        cell(b, t) = (-log p(h_t, click_t) - log(1 - p(h_t, noclick_t))) * m_t

    reduced by `reduction`:
    * `"all_cells"` (as coded): mean over **all** B×T' cells, so padded cells
      count in the denominator;
    * `"valid_cells"`: sum over cells divided by the number of real cells.

    The caller aligns the steps, as DIEN does: `hidden_states = gru[:, :-1]`,
    `clicked = history_emb[:, 1:]`, `unclicked = negative_emb[:, 1:]`,
    `mask = mask[:, 1:]` (the state after step t predicts behaviour t+1).

    Call arguments:
        hidden_states: [B, T', H].
        clicked, unclicked: [B, T', E].
        mask: [B, T'] float or bool, 1 on real cells.

    Returns a float32 scalar.

    Masking: only the explicit `mask`; no Keras mask is used or produced.

    Args:
        reduction: "all_cells" (default, as coded) or "valid_cells".
        network: an `AuxiliaryNetwork` (default: the DIEN repo's).
    """

    def __init__(self, reduction="all_cells", network=None, **kwargs):
        super().__init__(**kwargs)
        self.reduction = check_choice("reduction", reduction, AUX_REDUCTIONS)
        if network is None:
            network = AuxiliaryNetwork(dtype=self.dtype_policy, name="network")
        elif isinstance(network, dict):
            network = keras.saving.deserialize_keras_object(network)
        self.network = network
        self.supports_masking = True

    def build(self, hidden_states_shape, clicked_shape, unclicked_shape):
        for arg, shape in (("hidden_states", hidden_states_shape),
                           ("clicked", clicked_shape), ("unclicked", unclicked_shape)):
            check_rank(f"{arg} of {self.name}", shape, 3)
        if tuple(clicked_shape[1:]) != tuple(unclicked_shape[1:]):
            raise ValueError(
                f"{self.name}: clicked has shape {tuple(clicked_shape)} but unclicked "
                f"has shape {tuple(unclicked_shape)}; expected the same [B, T', E]."
            )
        if not self.network.built:  # a deserialized network arrives built
            self.network.build(hidden_states_shape, clicked_shape)

    def call(self, hidden_states, clicked, unclicked, mask=None, training=None):
        if mask is None:
            raise ValueError(f"{self.name}: mask [B, T'] is required, received None.")
        check_rank(f"mask of {self.name}", mask.shape, 2)
        for axis in (0, 1):
            got, want = mask.shape[axis], hidden_states.shape[axis]
            if got is not None and want is not None and got != want:
                raise ValueError(
                    f"{self.name}: mask has shape {tuple(mask.shape)}, expected "
                    f"{tuple(hidden_states.shape[:2])} to match hidden_states."
                )
        mask = ops.cast(mask, "float32")
        p_click, p_unclick = self.network.click_probabilities(
            hidden_states, clicked, unclicked, training=training)
        cells = -ops.log(p_click) * mask - ops.log(1.0 - p_unclick) * mask
        if self.reduction == "all_cells":
            # The mean, but 0 (not NaN) when no history has two steps (T' = 0):
            # users without history are valid input.
            count = ops.cast(ops.size(cells), cells.dtype)
            return ops.sum(cells) / ops.maximum(count, 1.0)
        return ops.sum(cells) / ops.maximum(ops.sum(mask), 1.0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, hidden_states, clicked, unclicked, mask=None, training=None):
        return keras.KerasTensor((), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            reduction=self.reduction,
            network=keras.saving.serialize_keras_object(self.network),
        )
        return config
