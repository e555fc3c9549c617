"""The Keras-private methods din_tf relies on, checked loudly.

Under a distribution strategy, Keras' `fit` builds compiled metrics from the
first batch reduced across replicas, which fails for dict inputs under
MultiWorkerMirroredStrategy (keras-team/keras#20329, still in 3.15.1). No
public hook skips it, so CTRModel overrides `Model._maybe_symbolic_build`
and setup.py bounds Keras to the versions verified here. When one of these
tests fails after a Keras upgrade, re-check that bug and the override before
widening the bound. (`_flatten_layers`, every nested layer, is only called:
by `CTRModel.embedding_tables` and the export's Dice lookup.)
"""

import inspect

import keras
import pytest
import tensorflow as tf

from din_tf.models import CTRModel, get_model
from tests.models.conftest import make_batch

HOOK = "_maybe_symbolic_build"
UPGRADE_NOTE = (f"(installed keras {keras.__version__}; CTRModel.{HOOK} was verified on "
                "3.15.1: see din_tf/models/ctr_model.py and the keras bound in setup.py)")


@pytest.mark.parametrize("name,parameters", [
    (HOOK, ["self", "iterator", "data_batch"]),
    ("_flatten_layers", ["self", "include_self", "recursive"]),
])
def test_keras_model_still_has_the_private_methods_with_their_signatures(name, parameters):
    method = getattr(keras.Model, name, None)
    assert method is not None, f"keras.Model.{name} no longer exists {UPGRADE_NOTE}"
    found = list(inspect.signature(method).parameters)
    assert found == parameters, (
        f"keras.Model.{name} now takes {found}, din_tf expects {parameters} {UPGRADE_NOTE}")


def test_fit_under_a_strategy_still_goes_through_the_override(monkeypatch):
    calls = []
    override = CTRModel._maybe_symbolic_build

    def spy(self, iterator=None, data_batch=None):
        calls.append(HOOK)
        return override(self, iterator=iterator, data_batch=data_batch)

    monkeypatch.setattr(CTRModel, HOOK, spy)
    features, labels = make_batch(n=8)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        model = get_model("din_repo/din", n_users=9, n_items=30, n_categories=6)
        model.compile(optimizer=keras.optimizers.SGD(0.01),
                      metrics=[keras.metrics.AUC(name="auc")])
    history = model.fit(features, labels, batch_size=8, epochs=1, verbose=0)
    assert calls, (f"keras.Model.fit under a strategy no longer calls {HOOK}, so CTRModel's "
                   f"override is dead code {UPGRADE_NOTE}")
    assert "auc" in history.history  # the compiled metric was built and updated


def test_metrics_are_the_loss_terms_then_the_compiled_metrics(batch):
    model = get_model("din_repo/din", n_users=9, n_items=30, n_categories=6)
    model.compile(metrics=[keras.metrics.AUC(name="auc")])
    features, labels = batch
    results = model.evaluate(features, labels, verbose=0)
    assert model.metrics_names == ["loss", "ctr_loss", "aux_loss", "reg_loss", "compile_metrics"]
    assert len(results) == 5 and results[0] == pytest.approx(sum(results[1:4]), rel=1e-5)
