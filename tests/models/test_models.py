"""Behaviour of every model: fit lowers the loss, `.keras` round trip,
sparse embedding gradients, presets, and argument errors."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from din_tf import models
from din_tf.layers import RowEmbedding
from din_tf.models import ORIGINAL_MODELS, get_model
from tests.models.conftest import make_batch

SIZES = dict(n_users=9, n_items=30, n_categories=6)


@pytest.mark.parametrize("name", sorted(ORIGINAL_MODELS))
def test_fit_lowers_the_loss_and_logs_every_term(name, batch, tmp_path):
    features, labels = batch
    model = get_model(name, **SIZES)
    model.compile(optimizer=keras.optimizers.Adam(0.01), metrics=["binary_accuracy"])
    before = model.evaluate(features, labels, batch_size=32, verbose=0, return_dict=True)
    history = model.fit(features, labels, batch_size=16, epochs=1, verbose=0)
    after = model.evaluate(features, labels, batch_size=32, verbose=0, return_dict=True)
    assert set(history.history) >= {"loss", "ctr_loss", "aux_loss", "reg_loss",
                                     "binary_accuracy"}
    assert after["loss"] < before["loss"]
    if name == "dien_repo/DIEN":
        assert before["aux_loss"] > 0
    else:
        assert before["aux_loss"] == 0
    np.testing.assert_allclose(
        before["loss"], before["ctr_loss"] + before["aux_loss"] + before["reg_loss"], rtol=1e-5)

    # .keras round trip: same predictions (one batch: Dice uses its statistics).
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(features), model(features), rtol=1e-6)
    assert loaded.get_config() == model.get_config()


@pytest.mark.parametrize("name", ["dien_repo/DIEN", "dien_repo/DIN", "din_repo/din"])
def test_embedding_gradients_are_sparse(name, batch):
    features, labels = batch
    model = get_model(name, **SIZES)
    with tf.GradientTape() as tape:
        _, losses = model.compute_losses(features, labels, training=True)
    grads = tape.gradient(losses["loss"], model.trainable_variables)
    tables = {id(t.embeddings) for t in model.embedding_tables()}
    assert tables
    for grad, variable in zip(grads, model.trainable_variables):
        if id(variable) in tables:
            assert isinstance(grad, tf.IndexedSlices), variable.path


def test_paper_preset_serves_each_row_independently(batch):
    features, _ = batch
    model = models.DIEN(9, 30, 6, preset="paper")
    assert model.options == dict(frozen_batch_norm=False, mask_history_sum=True,
                                 ctr_loss_reduction="per_example", dice_mode="paper",
                                 aux_reduction="valid_cells", augru_gate="paper",
                                 reset_after=True)
    full = np.asarray(model(features))
    for i in (0, 5, 17):
        row = {k: v[i:i + 1] for k, v in features.items()}
        np.testing.assert_allclose(model(row), full[i:i + 1], rtol=1e-5, atol=1e-7)


def test_dien_repo_preset_depends_on_the_batch_as_coded(batch):
    features, _ = batch
    model = models.DIEN(9, 30, 6)
    model.load_original_weights({"dice_1/alphadice_1": np.full(200, 0.3, "float32")})
    full = np.asarray(model(features))
    row = {k: v[:1] for k, v in features.items()}
    assert not np.allclose(model(row), full[:1], rtol=1e-4)


def test_explicit_options_override_the_preset():
    model = models.DIEN(9, 30, 6, preset="paper", augru_gate="as_coded")
    assert model.options["augru_gate"] == "as_coded"
    assert model.evolution.cell.gate == "as_coded"
    assert model.options["reset_after"] is True
    din = models.DINRepoModel(30, 6, kind="din_dice", preset="paper")
    assert din.mlp_dice[0].mode == "paper" and din.attention.use_softmax is False


def _constructor_options(cls):
    """Every keyword any constructor in `cls`'s hierarchy takes."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= set(inspect.signature(klass.__init__).parameters)
    return names


@pytest.mark.parametrize("name", sorted(models.ORIGINAL_MODELS))
def test_each_preset_sets_every_code_vs_paper_option_the_model_takes(name):
    """Every constructor option that any family documents as a code-vs-paper
    difference (`presets.FAMILIES`) is in the model's own family table, and
    `preset="paper"` / the family preset set it to that table's value."""
    from din_tf.models import presets
    family = name.split("/")[0]
    table = presets.FAMILIES[family]
    documented = set().union(*presets.FAMILIES.values())
    cls, fixed = models.ORIGINAL_MODELS[name]
    taken = (_constructor_options(cls) & documented) - set(fixed)
    assert taken, name
    assert taken <= set(table), f"{name}: {sorted(taken - set(table))} are left to defaults"
    sizes = dict(n_users=9, n_items=30, n_categories=6)
    for column, preset in enumerate((family, "paper")):
        model = models.get_model(name, preset=preset, **sizes)
        for option in taken:
            assert model.options[option] == table[option][column], (name, preset, option)


def test_history_sum_masking_option(batch):
    features, _ = batch
    coded = models.DNN(9, 30, 6)
    masked = models.DNN(9, 30, 6, mask_history_sum=True)
    out_coded, out_masked = coded.forward(features), masked.forward(features)
    history = np.asarray(out_coded["history_eb"])
    mask = np.arange(6)[None, :] < features["history_length"][:, None]
    np.testing.assert_allclose(out_coded["history_sum"], history.sum(1), rtol=1e-6)
    masked_history = np.asarray(out_masked["history_eb"]) * mask[..., None]
    np.testing.assert_allclose(out_masked["history_sum"], masked_history.sum(1), rtol=1e-6)


def test_ctr_loss_reductions(batch):
    features, labels = batch
    coded = models.DNN(9, 30, 6)
    usual = models.DNN(9, 30, 6, ctr_loss_reduction="per_example")
    usual.set_weights(coded.get_weights())
    p = np.asarray(coded(features), np.float64)
    y_hat = np.stack([p, np.asarray(coded.forward(features)["y_hat"])[:, 1]], -1)
    target = np.stack([labels, 1 - labels], -1)
    ce = -np.sum(np.log(y_hat) * target, -1)
    np.testing.assert_allclose(coded.compute_losses(features, labels, False)[1]["ctr_loss"],
                               ce.mean() / 2, rtol=1e-5)
    np.testing.assert_allclose(usual.compute_losses(features, labels, False)[1]["ctr_loss"],
                               ce.mean(), rtol=1e-5)


def test_out_of_vocabulary_ids_read_row_zero(batch):
    features, _ = batch
    model = models.DIN(9, 30, 6)
    zeroed = dict(features, item_id=np.zeros_like(features["item_id"]))
    unknown = dict(features, item_id=features["item_id"] * 0 + 999)
    negative = dict(features, item_id=features["item_id"] * 0 - 3)
    np.testing.assert_allclose(model(unknown), model(zeroed), rtol=1e-6)
    np.testing.assert_allclose(model(negative), model(zeroed), rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="vocab_size=30"):
        RowEmbedding(30, 4, out_of_range="error", name="strict")(np.array([31]))


def test_evaluation_without_negatives_skips_the_aux_loss(batch):
    features, labels = batch
    model = models.DIEN(9, 30, 6)
    model.compile()
    plain = {k: v for k, v in features.items() if not k.startswith("negative")}
    logs = model.evaluate(plain, labels, verbose=0, return_dict=True)
    assert logs["aux_loss"] == 0
    with pytest.raises(ValueError, match=r"missing input\(s\) \['negative_item_ids', "
                                         r"'negative_category_ids'\]"):
        model.fit(plain, labels, verbose=0)


def test_bad_arguments(batch):
    features, labels = batch
    with pytest.raises(ValueError, match=r"Unknown model name 'DIEN'.*'dien_repo/DIEN'"):
        get_model("DIEN", **SIZES)
    with pytest.raises(ValueError, match=r"gru_type='lstm'.*\['agru', 'aigru', 'augru', 'gru'\]"):
        models.DIEN(9, 30, 6, gru_type="lstm")
    with pytest.raises(ValueError, match=r"invalid preset='din_repo'.*\['dien_repo', 'paper'\]"):
        models.DIEN(9, 30, 6, preset="din_repo")
    with pytest.raises(ValueError, match=r"invalid preset='dien_repo'.*\['din_repo', 'paper'\]"):
        models.DINRepoModel(30, 6, preset="dien_repo")
    with pytest.raises(ValueError, match=r"kind='dcn'.*'din_dice'"):
        models.DINRepoModel(30, 6, kind="dcn")
    with pytest.raises(ValueError, match=r"n_items=0; expected a positive integer"):
        models.DNN(9, 0, 6)
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['gru_type'\]"):
        models.DNN(9, 30, 6, gru_type="augru")
    model = models.DNN(9, 30, 6)
    partial = {k: v for k, v in features.items() if k != "history_length"}
    with pytest.raises(ValueError, match=r"missing input\(s\) \['history_length \(or "
                                         r"history_mask\)'\]"):
        model(partial)
    with pytest.raises(ValueError, match="expects a dict of named features"):
        model(features["item_id"])
    with pytest.raises(ValueError, match=r"loss='mse' is not used"):
        model.compile(loss="mse")
    with pytest.raises(ValueError, match=r"embedding_update='lazy'.*\['dense', 'rows'\]"):
        model.compile(embedding_update="lazy")
    model.compile()
    with pytest.raises(ValueError, match="sample_weight is not supported"):
        model.fit(features, labels, sample_weight=np.ones_like(labels), verbose=0)
    with pytest.raises(ValueError, match=r"labels: expected shape \[B\] or \[B, 1\]"):
        model.fit(features, np.stack([labels, 1 - labels], -1), verbose=0)


def test_default_optimizers_are_the_originals():
    dien = models.DIEN(9, 30, 6)
    dien.compile()
    assert isinstance(dien.optimizer, keras.optimizers.Adam)
    assert dien.optimizer.epsilon == 1e-8
    np.testing.assert_allclose(dien.optimizer.learning_rate, 1e-3)
    din = models.DINRepoModel(30, 6)
    din.compile()
    assert isinstance(din.optimizer, keras.optimizers.SGD)
    assert din.gradient_clip_norm == 5.0 and din.embedding_update == "rows"
    schedule = din.optimizer._learning_rate
    np.testing.assert_allclose([schedule(0), schedule(336000), schedule(336001)],
                               [1.0, 1.0, 0.1])


@pytest.mark.parametrize("scaled", [False, True])
def test_clipping_applies_to_the_true_gradient_under_loss_scaling(scaled):
    """Mixed precision differentiates the scaled loss; clipping must act on
    the unscaled gradient (TF1 clipped the true one) and keep the scale."""
    model = models.DNN(9, 30, 6)
    optimizer = keras.optimizers.SGD(1.0)
    if scaled:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=1024.0)
    model.compile(optimizer=optimizer, gradient_clip_norm=0.5)
    scale = 1024.0 if scaled else 1.0
    true = tf.constant([[3.0, 4.0]])  # norm 5: clipped to 0.5 -> [0.3, 0.4]
    clipped = model._clip([true * scale])[0]
    np.testing.assert_allclose(clipped, np.array([[0.3, 0.4]]) * scale, rtol=1e-6)
    small = tf.constant([[0.03, 0.04]])  # below the threshold: unchanged
    np.testing.assert_allclose(model._clip([small * scale])[0], small * scale, rtol=1e-6)


def test_halve_learning_rate_each_epoch(batch):
    from din_tf.training import HalveLearningRateEachEpoch
    features, labels = batch
    model = models.DNN(9, 30, 6)
    model.compile()
    model.fit(features, labels, epochs=3, verbose=0, callbacks=[HalveLearningRateEachEpoch()])
    np.testing.assert_allclose(model.optimizer.learning_rate, 1e-3 / 8, rtol=1e-6)


@pytest.mark.parametrize("name,fast", [("dien_repo/DIEN", True), ("din_repo/din_dice", False)])
def test_xla_training_matches_graph_training(name, fast, batch):
    """jit_compile=True compiles forward and backward with XLA (the update
    stays outside); two fit steps give the same weights as without XLA."""
    from din_tf.training import LazyAdam, MiniBatchAwareL2

    features, labels = batch
    weights = []
    for jit in (False, True):
        keras.utils.set_random_seed(1)
        model = get_model(name, **SIZES)
        initial = model.get_weights()
        kwargs = dict(optimizer=LazyAdam(0.01), embedding_update="rows",
                      regularizer=MiniBatchAwareL2(0.01)) if fast else {}
        model.compile(jit_compile=jit, **kwargs)
        model.fit(features, labels, batch_size=16, epochs=1, verbose=0, shuffle=False)
        assert model.jit_compile == jit
        assert (getattr(model, "_xla_gradients", None) is not None) == jit
        weights.append(model.get_weights())
    # Adam divides each gradient by its own scale, so XLA's reordered float sums
    # reach the weights as up to ~1e-3 of a step (lr 0.01: 2e-6 measured on
    # this CPU); a wrong gradient would move them by a whole step.
    for a, b in zip(*weights):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    assert sum(not np.allclose(a, i) for a, i in zip(weights[0], initial)) > 5


def test_every_model_method_converts_with_autograph():
    """A method whose body is only a docstring (DIENRepoModel.add_outputs)
    made AutoGraph print a conversion warning on every trace of DNN, PNN and
    Wide: every method the zoo's model classes define must convert."""
    import inspect

    from din_tf.models.ctr_model import CTRModel

    classes = {cls for _, module in inspect.getmembers(models, inspect.ismodule)
               for _, cls in inspect.getmembers(module, inspect.isclass)
               if issubclass(cls, CTRModel) and cls.__module__.startswith("din_tf.")}
    assert len(classes) >= 5
    for cls in classes:
        for name, member in vars(cls).items():
            if inspect.isfunction(member) and not name.startswith("__"):
                tf.autograph.to_graph(member)
