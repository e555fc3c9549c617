"""Training recipes (din_tf/training/recipes.py): one object per model family
that the models' compile defaults, the experiment registry, the runner and
the benchmarks all read. Each agreement test runs twice: with the shipped
recipes, and with every recipe changed in every field the place reads, so a
place that states a value itself instead of reading the recipe fails."""

import ast
import dataclasses
import os
import keras
import numpy as np
import pytest

from din_tf import models
from din_tf.experiments import config as C
from din_tf.experiments import registry, runner
from din_tf.training import recipes
from din_tf.training.recipes import RECIPES, mode_recipe, recipe_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZES = dict(n_users=9, n_items=30, n_categories=6)
OPTIMIZER_CLASSES = {"adam": "FusedAdam", "lazy_adam": "LazyAdam", "sgd": "SGD",
                     "adagrad": "Adagrad"}
# Every recipe with every value a place reads changed (and still valid).
CHANGED = {
    "dien_repo": dict(optimizer="adagrad", learning_rate=0.25, gradient_clip_norm=2.5,
                      embedding_update="rows", train_batch_size=64, eval_batch_size=96,
                      epochs=4, maxlen=50, seed=7),
    "din_repo": dict(optimizer="adam", learning_rate=0.02,
                     learning_rate_steps=((100, 0.002), (200, 0.0002)),
                     gradient_clip_norm=None, embedding_update="dense", train_batch_size=16,
                     eval_batch_size=64, epochs=6, shuffle=False, maxlen=20, seed=11),
    "din_repo/deepfm": dict(optimizer="sgd", learning_rate=0.3, gradient_clip_norm=1.5,
                            embedding_update="dense", halve_lr_each_epoch=True,
                            train_batch_size=8, epochs=2, seed=5),
    "din_repo/wide_deep": dict(optimizer="lazy_adam", learning_rate=0.01,
                               learning_rate_steps=((50, 0.001),), epochs=9, eval_batch_size=7),
    "fast": dict(optimizer="adagrad", learning_rate=0.05, gradient_clip_norm=0.5,
                 embedding_update="dense", train_batch_size=48, eval_batch_size=24, epochs=5,
                 shuffle=False, maxlen=30, seed=9, halve_lr_each_epoch=True),
}
# One model per recipe (and the baselines, which train as the DIEN repo's).
MODEL_RECIPES = {"dien_repo/DNN": "dien_repo", "dien_repo/DIEN": "dien_repo",
                 "din_repo/base": "din_repo", "din_repo/din_dice": "din_repo",
                 "din_repo/deepfm": "din_repo/deepfm", "din_repo/wide_deep": "din_repo/wide_deep",
                 "baseline/LR": "dien_repo"}


@pytest.fixture(params=["shipped", "changed"])
def recipes_in_use(request, monkeypatch):
    """The recipes every place must follow: as shipped, or all changed."""
    if request.param == "changed":
        for name, changes in CHANGED.items():
            monkeypatch.setitem(RECIPES, name, RECIPES[name].replace(**changes))
    return request.param


def _rate(value):
    return float(np.float32(value))


def expected_training(recipe):
    """What a model compiled with `recipe` trains with."""
    return {"optimizer": OPTIMIZER_CLASSES[recipe.optimizer],
            "learning_rate": [_rate(recipe.learning_rate),
                              [[step, _rate(rate)] for step, rate in recipe.learning_rate_steps]],
            "epsilon": recipes.TF1_ADAM_EPSILON if recipe.optimizer in ("adam", "lazy_adam")
            else None,
            "gradient_clip_norm": recipe.gradient_clip_norm,
            "embedding_update": recipe.embedding_update}


def compiled_training(model):
    """What the compiled `model` trains with (as `expected_training`), JSON-ready."""
    optimizer = model.optimizer
    rate = optimizer._learning_rate
    if isinstance(rate, keras.optimizers.schedules.PiecewiseConstantDecay):
        rates = [_rate(rate.values[0]),
                 [[int(b), _rate(v)] for b, v in zip(rate.boundaries, rate.values[1:])]]
    else:
        rates = [_rate(keras.ops.convert_to_numpy(rate)), []]
    return {"optimizer": type(optimizer).__name__, "learning_rate": rates,
            "epsilon": optimizer.epsilon if isinstance(optimizer, keras.optimizers.Adam)
            else None,
            "gradient_clip_norm": model.gradient_clip_norm,
            "embedding_update": model.embedding_update}


def expected_config(recipe, optimizer):
    """The experiment config values `recipe` sets (`optimizer`: also its
    optimizer fields; else they are left to the model's recipe)."""
    values = {"data.train_batch_size": recipe.train_batch_size,
              "data.eval_batch_size": recipe.eval_batch_size, "data.shuffle": recipe.shuffle,
              "data.batching": recipe.batching, "data.maxlen": recipe.maxlen,
              "trainer.epochs": recipe.epochs,
              "trainer.halve_lr_each_epoch": recipe.halve_lr_each_epoch,
              "runtime.seed": recipe.seed}
    if optimizer:
        values.update({"trainer.optimizer": recipe.optimizer,
                       "trainer.learning_rate": recipe.learning_rate,
                       "trainer.embedding_update": recipe.embedding_update,
                       "trainer.gradient_clip_norm": recipe.gradient_clip_norm})
    else:
        values.update({"trainer.optimizer": "original", "trainer.learning_rate": None,
                       "trainer.embedding_update": None, "trainer.gradient_clip_norm": None})
    return values


def config_values(cfg, keys):
    values = {}
    for key in keys:
        section, field = key.split(".")
        values[key] = getattr(getattr(cfg, section), field)
    return values


# --- the recipe objects ---------------------------------------------------------


def test_shipped_recipes_state_the_originals_training():
    dien, din = RECIPES["dien_repo"], RECIPES["din_repo"]
    assert (dien.optimizer, dien.learning_rate, dien.halve_lr_each_epoch,
            dien.gradient_clip_norm, dien.embedding_update) == ("adam", 1e-3, True, None, "dense")
    assert (dien.train_batch_size, dien.eval_batch_size, dien.epochs, dien.batching,
            dien.shuffle, dien.maxlen, dien.seed) == (128, 128, 3, "dien_iterator", False, 100, 3)
    assert (din.optimizer, din.learning_rate, din.learning_rate_steps,
            din.gradient_clip_norm, din.embedding_update) == (
                "sgd", 1.0, ((336000, 0.1),), 5.0, "rows")
    assert (din.train_batch_size, din.eval_batch_size, din.epochs, din.shuffle, din.maxlen,
            din.seed) == (32, 512, 50, True, None, 1234)
    deepfm = RECIPES["din_repo/deepfm"]
    assert dataclasses.replace(deepfm, name="din_repo", optimizer="sgd", learning_rate=1.0,
                               learning_rate_steps=((336000, 0.1),)) == din
    assert RECIPES["din_repo/wide_deep"] == din.replace(name="din_repo/wide_deep", epochs=30)
    fast = RECIPES["fast"]
    assert (fast.optimizer, fast.learning_rate, fast.gradient_clip_norm,
            fast.embedding_update) == ("lazy_adam", 1e-3, None, "rows")
    schedule = din.learning_rate_schedule()
    np.testing.assert_allclose([schedule(0), schedule(336000), schedule(336001)],
                               [1.0, 1.0, 0.1])


def test_recipes_are_frozen_and_validated():
    recipe = RECIPES["din_repo"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.epochs = 3
    for changes, message in [
            (dict(optimizer="adamw"), r"optimizer='adamw'; expected one of \['adam'"),
            (dict(learning_rate=0), "learning_rate=0"),
            (dict(learning_rate_steps=((5, 0.1), (5, 0.01))), "learning_rate_steps"),
            (dict(learning_rate_steps=[(5, 0.1)]), "learning_rate_steps"),
            (dict(halve_lr_each_epoch=True),
             "halve_lr_each_epoch=True; expected False with learning_rate_steps"),
            (dict(gradient_clip_norm=-1.0), "gradient_clip_norm=-1.0"),
            (dict(embedding_update="lazy"),
             r"embedding_update='lazy'; expected one of \['dense', 'rows'\]"),
            (dict(train_batch_size=0), "train_batch_size=0"),
            (dict(epochs=True), "epochs=True"),
            (dict(batching="dien_iterator"),
             "shuffle=True; expected False with batching='dien_iterator'"),
            (dict(maxlen=0), "maxlen=0"),
            (dict(seed=-1), "seed=-1")]:
        with pytest.raises(ValueError, match=r"TrainingRecipe 'din_repo': invalid " + message):
            recipe.replace(**changes)


def test_recipe_for_every_model_and_family():
    assert recipe_for("fast") is RECIPES["fast"]
    assert recipe_for("baseline") is recipe_for("dien_repo") is RECIPES["dien_repo"]
    for name in models.MODELS:
        expected = (name if name in ("din_repo/deepfm", "din_repo/wide_deep")
                    else "din_repo" if name.startswith("din_repo/") else "dien_repo")
        assert recipe_for(name) is RECIPES[expected], name
    with pytest.raises(ValueError, match=r"No training recipe for 'deepctr/DIN'"):
        recipe_for("deepctr/DIN")


def test_mode_recipe():
    din = RECIPES["din_repo"]
    assert mode_recipe(din, "faithful") is din
    fast = mode_recipe(din, "fast")
    # The fast recipe's optimizer and update; the family's clipping and batches.
    assert (fast.optimizer, fast.learning_rate, fast.learning_rate_steps,
            fast.embedding_update) == ("lazy_adam", 1e-3, (), "rows")
    assert (fast.gradient_clip_norm, fast.train_batch_size) == (5.0, 32)
    with pytest.raises(ValueError, match=r"Invalid mode='quick'"):
        mode_recipe(din, "quick")


def test_compile_takes_a_recipe_and_explicit_arguments_win():
    model = models.get_model("din_repo/base", **SIZES)
    model.compile(recipe=RECIPES["fast"])
    assert compiled_training(model) == expected_training(RECIPES["fast"])
    model.compile(recipe=model.training_recipe.replace(gradient_clip_norm=None))
    assert model.gradient_clip_norm is None and model.embedding_update == "rows"
    model.compile(embedding_update="dense", gradient_clip_norm=1.0)
    assert (model.embedding_update, model.gradient_clip_norm) == ("dense", 1.0)
    with pytest.raises(ValueError, match=r"recipe='fast'; expected a"):
        model.compile(recipe="fast")


def test_the_configs_defaults_are_the_default_models_recipe():
    """ExperimentConfig() (which reads without TensorFlow, so does not import
    the recipes) trains the default model as its family's recipe, but for
    the batch order: plain sequential batches unless an experiment says."""
    cfg = C.ExperimentConfig()
    recipe = recipe_for(cfg.model.name)
    expected = expected_config(recipe, optimizer=False)
    expected["data.batching"] = "sequential"
    assert config_values(cfg, expected) == expected


# --- every place agrees with the recipe ---------------------------------------------


@pytest.mark.parametrize("name", sorted(MODEL_RECIPES))
def test_model_compile_defaults_are_the_recipe(name, recipes_in_use):
    recipe = RECIPES[MODEL_RECIPES[name]]
    model = models.get_model(name, **SIZES)
    assert model.training_recipe is recipe is recipe_for(name)
    model.compile()
    assert compiled_training(model) == expected_training(recipe)
    assert compiled_training(_compiled(model.default_optimizer(), model)) == \
        expected_training(recipe)


def _compiled(optimizer, model):
    model.compile(optimizer=optimizer)
    return model


def _experiment_recipe(name):
    """The recipe an experiment trains with: your own log's is "fast"; every
    other experiment trains its model as the model's family does."""
    if name.startswith(("own_log/", "movielens100k/")):
        return RECIPES["fast"], True
    return recipe_for(registry.get_experiment(name).model.name), False


def test_registry_experiments_are_their_recipes(recipes_in_use):
    for name in sorted(registry.EXPERIMENTS):
        cfg = registry.get_experiment(name)
        recipe, optimizer = _experiment_recipe(name)
        expected = expected_config(recipe, optimizer)
        if name == "default":
            expected["trainer.epochs"] = 1  # the README's five-minute job
        assert config_values(cfg, expected) == expected, name


@pytest.mark.parametrize("experiment", ["dien_repo/DNN@dien", "dien_repo/DIEN@din",
                                        "din_repo/base@din", "din_repo/deepfm@din",
                                        "paper/AUGRU@dien", "own_log/LR", "own_log/DNN",
                                        "default"])
def test_the_runner_compiles_the_experiments_recipe(experiment, recipes_in_use):
    cfg = registry.get_experiment(experiment)
    recipe, _ = _experiment_recipe(experiment)
    model = models.get_model(cfg.model.name, **SIZES, **cfg.model.options)
    runner._compile(model, cfg, data=None)
    assert compiled_training(model) == expected_training(recipe)


def test_runner_trainer_fields_override_the_recipe():
    cfg = registry.get_experiment("din_repo/din@din")
    model = models.get_model(cfg.model.name, **SIZES)
    cfg.trainer.learning_rate, cfg.trainer.gradient_clip_norm = 0.5, 2.0
    runner._compile(model, cfg, data=None)
    expected = expected_training(model.training_recipe.replace(
        learning_rate=0.5, learning_rate_steps=(), gradient_clip_norm=2.0))
    assert compiled_training(model) == expected
    cfg.trainer.optimizer, cfg.trainer.learning_rate = "lazy_adam", None
    cfg.trainer.embedding_update = "dense"
    runner._compile(model, cfg, data=None)
    assert compiled_training(model) == expected_training(model.training_recipe.replace(
        optimizer="lazy_adam", learning_rate=1e-3, learning_rate_steps=(),
        gradient_clip_norm=2.0, embedding_update="dense"))


def test_benchmark_modes_are_the_recipes(recipes_in_use):
    """train_throughput.py (and attention_fold_ab.py, step_profile.py, which
    build through it) compiles each mode from the recipes."""
    from benchmarks import train_throughput

    for name, recipe in sorted(MODEL_RECIPES.items()):
        for mode in recipes.MODES:
            model = train_throughput.compiled_model(name, mode, vocabulary=SIZES)
            assert compiled_training(model) == expected_training(
                mode_recipe(RECIPES[recipe], mode)), (name, mode)


# Optimizers built, and compile settings written, in a benchmark's code
# instead of read from the recipes.
OPTIMIZER_CALLS = ("LazyAdam", "FusedAdam", "SGD", "Adam", "Adagrad", "original_optimizer")
SETTING_ARGUMENTS = ("optimizer", "learning_rate", "epsilon", "embedding_update",
                     "gradient_clip_norm")


def hand_made_settings(source):
    """Calls in `source` that build an optimizer, or pass a training setting
    as a literal (docstrings and comments aside)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        called = node.func.attr if isinstance(node.func, ast.Attribute) else \
            getattr(node.func, "id", None)
        if called in OPTIMIZER_CALLS:
            found.append(f"line {node.lineno}: {called}(...)")
        found += [f"line {node.lineno}: {kw.arg}={kw.value.value!r}" for kw in node.keywords
                  if kw.arg in SETTING_ARGUMENTS and isinstance(kw.value, ast.Constant)]
    return sorted(found)


def test_the_source_check_finds_a_hand_made_fast_mode():
    assert hand_made_settings(
        '''"""LazyAdam(1e-3) in a docstring is fine."""
model.compile(optimizer=training.LazyAdam(1e-3, epsilon=1e-8), embedding_update="rows")
''') == ["line 2: LazyAdam(...)", "line 2: embedding_update='rows'",
           "line 2: epsilon=1e-08"]


@pytest.mark.parametrize("path", ["benchmarks/train_throughput.py",
                                  "benchmarks/fused_adam_ab.py", "benchmarks/serving.py",
                                  "benchmarks/ps_throughput.py"])
def test_benchmarks_build_no_optimizer_by_hand(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        source = f.read()
    assert "mode_recipe(" in source, path
    assert hand_made_settings(source) == [], f"{path} states training settings itself"
