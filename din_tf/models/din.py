"""DIN as refactored in the DIEN repo (the DIN authors' recommended code)."""

from keras import ops

from din_tf.api_export import din_tf_export
from din_tf.layers import DINAttention
from din_tf.models._original_variables import dense_map
from din_tf.models.dien_repo_base import DIENRepoModel


@din_tf_export("din_tf.models.DIN")
class DIN(DIENRepoModel):
    """Deep Interest Network (DIN paper §4.3, eq. 3: `v_U = sum_j a(e_j, v_A) e_j`)
    as the DIEN repo codes it (`Model_DIN`, train.py `DIN`).

    The local activation unit is `DINAttention("dien")`
    (docs/original_code.md#din-attention-of-the-dien-repo: MLP
    80-40-1 sigmoid on `[q, k, q - k, q * k]`, masked, softmax over the
    history) over `history_eb` with `item_eb` as the query; its weighted sum
    is appended to the MLP input `[uid, item_eb, history_sum,
    item_eb * history_sum, attention]` (162). Dice activations ("dien" mode:
    batch statistics in training and inference, as coded).

    The DIN repo's own (2017/2020) architecture is `DINRepoModel(kind="din")`.

    With `mask_history_sum=True` (padding ignored) a row without history
    pools to zeros in the attention as in the history sum; as coded its
    attention averages the padded steps.

    Args:
        attention_softmax: softmax-normalise the attention weights (True as
            coded; the DIN paper drops the softmax). None: the preset's
            (`preset="paper"`: False).
        other arguments: see `DIENRepoModel`.
    """

    default_activation = "dice"

    def __init__(self, n_users=None, n_items=None, n_categories=None, attention_softmax=None,
                 **kwargs):
        super().__init__(n_users, n_items, n_categories,
                         _sequence_options=dict(attention_softmax=attention_softmax), **kwargs)
        self.attention_softmax = bool(self.options["attention_softmax"])
        names = ["attention"] + [f"attention_{s.name}" for s in self.schema.sequences[1:]]
        layers = [DINAttention("dien", use_softmax=self.attention_softmax,
                               zero_masked_weights=not self.attention_softmax, name=name)
                  for name in names]
        # The first sequence's layer keeps the original's name and attribute.
        self.attention, self.more_attention = layers[0], layers[1:]
        self._build_weights()

    def sequence_features(self, index, seq, inputs, outputs, lookups, training, with_aux):
        attention = self.attention if index == 0 else self.more_attention[index - 1]
        pooled = attention(outputs["item_eb"], outputs["history_eb"], mask=inputs.mask)
        if self.options["mask_history_sum"]:
            # As coded, a history without a real step gets uniform softmax
            # weights, i.e. the mean of its padding; ignoring padding, it
            # pools to zeros (as its history sum does).
            pooled = pooled * ops.cast(inputs.lengths > 0, pooled.dtype)[:, None]
        outputs["attention_output"] = pooled
        item, history = outputs["item_eb"], outputs["history_sum"]
        return [item * history, pooled]

    def original_variable_map(self):
        mapping = super().original_variable_map()  # raises for a schema-built model
        for i, dense in enumerate(self.attention.score_layers, start=1):
            mapping.update(dense_map(f"f{i}_attnull", dense))
        return mapping

    def get_config(self):
        config = super().get_config()
        config["attention_softmax"] = self.attention_softmax
        return config
