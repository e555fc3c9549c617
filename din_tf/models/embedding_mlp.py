"""The DIEN repo's non-sequential baselines: Embedding&MLP, PNN, Wide&Deep."""

import keras
from keras import ops

from din_tf.api_export import din_tf_export
from din_tf.models._original_variables import dense_map
from din_tf.models.dien_repo_base import DIENRepoModel


@din_tf_export("din_tf.models.DNN")
class DNN(DIENRepoModel):
    """Embedding&MLP, the DIEN paper's "BaseModel" (DIEN repo `Model_DNN`,
    train.py `DNN`).

    MLP input `[uid, item_eb, history_sum]` (90 wide at the defaults), PReLU
    activations. Paper: DIEN Table 2 "BaseModel"; DIN eq. "Embedding&MLP".
    Defaults reproduce the original; see `DIENRepoModel` for all arguments.
    """

    def __init__(self, n_users=None, n_items=None, n_categories=None, **kwargs):
        super().__init__(n_users, n_items, n_categories, **kwargs)
        self._build_weights()


@din_tf_export("din_tf.models.PNN")
class PNN(DIENRepoModel):
    """Product-based network as the DIEN repo codes it (`Model_PNN`, `PNN`):
    MLP input `[uid, item_eb, history_sum, item_eb * history_sum]` (126),
    PReLU. See `DIENRepoModel` for all arguments."""

    def __init__(self, n_users=None, n_items=None, n_categories=None, **kwargs):
        super().__init__(n_users, n_items, n_categories, **kwargs)
        self._build_weights()

    def sequence_features(self, index, seq, inputs, outputs, lookups, training, with_aux):
        return [outputs["item_eb"] * outputs["history_sum"]]


@din_tf_export("din_tf.models.WideDeep")
class WideDeep(DIENRepoModel):
    """Wide&Deep as the DIEN repo codes it (`Model_WideDeep`, train.py `Wide`).

    Deep part: the DNN (input `[uid, item_eb, history_sum]`, PReLU layers
    named `p1`, `p2` in the original); wide part: Dense(2) `f_fm` on
    `[item_eb, history_sum, item_eb * history_sum]` (108). `y_hat =
    softmax(deep + wide)` **without** the +1e-8 the other models add
    (`probability_offset=0.0` by default, as coded). See `DIENRepoModel`.
    """

    def __init__(self, n_users=None, n_items=None, n_categories=None, probability_offset=0.0,
                 **kwargs):
        super().__init__(n_users, n_items, n_categories, probability_offset=probability_offset,
                         **kwargs)
        self.wide_dense = keras.layers.Dense(2, name="f_fm")
        self._build_weights()

    def head(self, mlp_input, outputs, training):
        wide = self.wide_dense(ops.concatenate(wide_inputs(outputs, self.schema), axis=-1))
        return super().head(mlp_input, outputs, training) + wide

    def _activation_map(self, index, layer):
        return {f"p{index}/prelu_p{index}": layer.alpha}

    def original_variable_map(self):
        mapping = super().original_variable_map()
        mapping.update(dense_map("f_fm", self.wide_dense))
        return mapping


def wide_inputs(outputs, schema):
    """The wide part's input: `item_eb`, then per sequence its history sum and
    that sum times its query (`[item_eb, history_sum, item_eb * history_sum]`
    for the originals' inputs)."""
    parts = [outputs["item_eb"]]
    for index, seq in enumerate(schema.sequences):
        part = outputs if index == 0 else outputs[f"sequence/{seq.name}"]
        parts += [part["history_sum"], part["item_eb"] * part["history_sum"]]
    return parts
