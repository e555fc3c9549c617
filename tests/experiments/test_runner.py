"""The absl experiment runner: config layering, outputs, resume, bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from din_tf.experiments import config as C
from din_tf.experiments import registry, runner
from din_tf.experiments.run import resolve_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))




def _tiny(processed_dir, model="dien_repo/DNN", **trainer):
    cfg = resolve_config(f"{model}@dien", params_override=json.dumps({
        "data": {"processed_dir": processed_dir, "train_batch_size": 64,
                 "eval_batch_size": 1024},
        "trainer": {"epochs": 1, "steps_per_epoch": 3, **trainer},
    }))
    return cfg


def test_config_layers_experiment_file_override_and_flags(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"trainer": {"epochs": 7, "optimizer": "adam"},
                                "model": {"options": {"gru_type": "agru"}}}))
    cfg = resolve_config("dien_repo/DIEN@dien", str(path),
                         "trainer.epochs=5,data.maxlen=null,model.options={\"use_aux_loss\": false}",
                         {"seed": 11, "epochs": None, "strategy": "mirrored"})
    assert cfg.trainer.epochs == 5 and cfg.trainer.optimizer == "adam"
    assert cfg.data.maxlen is None and cfg.runtime.seed == 11
    assert cfg.runtime.strategy == "mirrored"
    assert cfg.model.options == {"gru_type": "agru", "use_aux_loss": False}
    din_repo = registry.get_experiment("din_repo/din@din")
    assert (din_repo.data.train_batch_size, din_repo.trainer.epochs, din_repo.data.shuffle) == \
        (32, 50, True)
    assert registry.get_experiment("paper/AUGRU@dien").model.options["preset"] == "paper"
    assert len([n for n in registry.EXPERIMENTS if "@" in n]) == 2 * (15 + 4)
    own_log = registry.get_experiment("own_log/DeepFM")
    assert (own_log.model.name, own_log.data.log_spec) == ("baseline/DeepFM", None)
    movielens = registry.get_experiment("movielens100k/DIN-ids-only")
    assert movielens.data.schema.endswith("schema_ids_only.json")


def test_bad_config_input_names_the_problem(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown experiment 'DIEN'.*\n.*default"):
        resolve_config("DIEN")
    with pytest.raises(ValueError, match=r"Unknown config key\(s\) \['trainer.epoch'\].*"
                                         r"'trainer.epochs'"):
        resolve_config("default", params_override="trainer.epoch=2")
    with pytest.raises(ValueError, match=r"\['optimiser'\]; valid keys under <root>"):
        resolve_config("default", params_override="optimiser.lr=1")
    with pytest.raises(ValueError, match=r"item 'trainer' is not of the form key=value"):
        resolve_config("default", params_override="trainer")
    with pytest.raises(ValueError, match=r"config_file '.*missing.json' does not exist"):
        resolve_config("default", str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match=r"runtime.min_shard_bytes=4096; expected null "
                                         r"unless runtime.strategy is 'parameter_server'"):
        resolve_config("default", params_override="runtime.min_shard_bytes=4096").validate()
    with pytest.raises(ValueError, match=r"runtime.min_shard_bytes=0; expected null or an integer >= 1"):
        resolve_config("default", params_override="runtime.strategy=parameter_server,"
                       "runtime.min_shard_bytes=0").validate()
    with pytest.raises(ValueError, match=r"runtime.jit_compile=True; expected false with "
                                         r"runtime.strategy='parameter_server'"):
        resolve_config("default", params_override="runtime.strategy=parameter_server,"
                       "runtime.jit_compile=true").validate()
    resolve_config("default", params_override="runtime.strategy=parameter_server,"
                   "runtime.min_shard_bytes=4096").validate()


def test_train_and_eval_writes_every_output(processed_dir, tmp_path):
    model_dir = str(tmp_path / "run")
    results = runner.run(_tiny(processed_dir), model_dir, "train_and_eval", export=True)
    for name in ("config.json", "metrics.json", "metrics.csv", "curves.png", "eval.json",
                 "final.weights.h5", "checkpoints/epoch_001.weights.h5"):
        assert os.path.exists(os.path.join(model_dir, name)), name
    assert os.listdir(os.path.join(model_dir, "tensorboard"))
    with open(os.path.join(model_dir, "curves.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    history = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert [h["epoch"] for h in history] == [1]
    for key in ("loss", "ctr_loss", "aux_loss", "reg_loss", "test_auc", "test_gauc",
                "test_dinrepo_gauc", "test_dien_calc_auc"):
        assert np.isfinite(history[0][key]), key
    assert 0.0 < results["auc"] < 1.0 and 0.0 < results["gauc"] < 1.0
    assert os.path.exists(os.path.join(results["export_dir"], "saved_model.pb"))
    header = open(os.path.join(model_dir, "metrics.csv")).readline().strip().split(",")
    assert header[0] == "epoch" and "test_auc" in header


def test_run_without_matplotlib_writes_metrics_and_says_how_to_get_curves(
        processed_dir, tmp_path, monkeypatch, caplog):
    import logging
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    model_dir = str(tmp_path / "run")
    with caplog.at_level(logging.WARNING):
        results = runner.run(_tiny(processed_dir), model_dir, "train_and_eval", export=False)
    assert 0.0 < results["auc"] < 1.0
    assert not os.path.exists(os.path.join(model_dir, "curves.png"))
    assert [h["epoch"] for h in json.load(open(os.path.join(model_dir, "metrics.json")))] == [1]
    assert os.path.exists(os.path.join(model_dir, "metrics.csv"))
    lines = [r.getMessage() for r in caplog.records if "curves.png" in r.getMessage()]
    assert len(lines) == 1 and 'pip install "din_tf[plots]"' in lines[0]


def test_interrupted_run_resumes_from_its_last_epoch(processed_dir, tmp_path, monkeypatch):
    model_dir = str(tmp_path / "run")
    cfg = _tiny(processed_dir, epochs=2)

    def crash_in_second_epoch(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated preemption")

    monkeypatch.setattr(runner.EpochEvaluation, "on_epoch_begin", crash_in_second_epoch,
                        raising=False)
    with pytest.raises(KeyboardInterrupt):
        runner.run(cfg, model_dir, "train_and_eval", export=False)
    assert os.listdir(os.path.join(model_dir, "backup")) == ["epoch_001"]
    meta = json.load(open(os.path.join(model_dir, "backup", "epoch_001", "state.json")))
    assert meta["finished_epochs"] == 1  # the backup holds one finished epoch
    seen = []
    monkeypatch.setattr(runner.EpochEvaluation, "on_epoch_begin",
                        lambda self, epoch, logs=None: seen.append(epoch), raising=False)
    runner.run(cfg, model_dir, "train_and_eval", export=False)
    assert seen == [1]  # resumed at the second epoch
    assert json.load(open(os.path.join(model_dir, "state.json"))) == {"completed_epochs": 2}
    history = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert [h["epoch"] for h in history] == [1, 2]


def test_incompatible_resume_and_bad_model_dir_are_errors(processed_dir, tmp_path):
    model_dir = str(tmp_path / "run")
    runner.run(_tiny(processed_dir), model_dir, "train", export=False)
    other = _tiny(processed_dir, model="dien_repo/PNN")
    with pytest.raises(runner.RunnerError, match=r"different config \(changed: model.name\)"):
        runner.run(other, model_dir, "train", export=False)
    more_epochs = _tiny(processed_dir, epochs=2)  # resuming with more epochs is fine
    runner._prepare_model_dir(model_dir, more_epochs)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(runner.RunnerError, match=r"model_dir '.*file/run' is not writable"):
        runner.run(_tiny(processed_dir), str(blocker / "run"), "train", export=False)
    with pytest.raises(runner.RunnerError, match="has no trained weights"):
        runner.run(_tiny(processed_dir), str(tmp_path / "fresh"), "eval", export=False)


def test_command_line_errors_exit_2_with_a_message(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "din_tf.experiments.run", "--experiment=nope",
         f"--model_dir={tmp_path}"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 2
    assert "Unknown experiment 'nope'" in proc.stderr and "dien_repo/DIEN@dien" in proc.stderr
    listing = subprocess.run([sys.executable, "-m", "din_tf.experiments.run", "--list_experiments"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0 and "paper/DIEN@din" in listing.stdout.split()


def test_steps_per_execution_trains_the_same_steps_to_the_same_weights(processed_dir,
                                                                      tmp_path):
    """Several steps per tf.function call (the last call of the epoch partial)
    change speed only: the same steps, data order and final weights."""
    import keras
    from din_tf import models
    from din_tf.experiments import inputs

    data = inputs.load(C.DataConfig(processed_dir=processed_dir), str(tmp_path / "p"))
    batches = -(-len(data.train.label) // 64)
    assert batches % 4, "the epoch should end inside a 4-step call"
    weights, history = {}, {}
    for steps in (1, 4):
        cfg = _tiny(processed_dir, model="dien_repo/DIEN", steps_per_epoch=None,
                    steps_per_execution=steps)
        model_dir = str(tmp_path / f"spe{steps}")
        runner.run(cfg, model_dir, "train_and_eval", export=False)
        history[steps] = json.load(open(os.path.join(model_dir, "metrics.json")))[-1]
        model = models.get_model(cfg.model.name, n_users=data.n_users, n_items=data.n_items,
                                 n_categories=data.n_categories)
        model.load_weights(os.path.join(model_dir, "final.weights.h5"))
        weights[steps] = [w.numpy() for w in model.weights]
        keras.backend.clear_session()
    for a, b in zip(weights[1], weights[4], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    # The epoch's mean training loss covers every step: equal only if both
    # runs took the same steps on the same batches.
    for key in ("loss", "ctr_loss", "aux_loss", "test_auc"):
        assert np.isfinite(history[1][key]), key
        np.testing.assert_allclose(history[4][key], history[1][key], rtol=1e-5, err_msg=key)
    with pytest.raises(ValueError, match=r"trainer.steps_per_execution=0; expected an "
                                         r"integer >= 1"):
        runner.run(_tiny(processed_dir, steps_per_execution=0), str(tmp_path / "bad"),
                   "train", export=False)
    assert not os.path.exists(tmp_path / "bad")  # nothing written for a bad config


def test_xla_and_mixed_precision_runs_train_evaluate_and_export(processed_dir, tmp_path):
    cfg = resolve_config("dien_repo/DIEN@dien", params_override=json.dumps({
        "data": {"processed_dir": processed_dir, "train_batch_size": 64,
                 "eval_batch_size": 1024},
        "trainer": {"epochs": 1, "steps_per_epoch": 2},
        "runtime": {"jit_compile": True, "mixed_precision": True}}))
    results = runner.run(cfg, str(tmp_path / "run"), "train_and_eval", export=True)
    assert np.isfinite(results["loss"]) and 0.0 < results["auc"] < 1.0
    assert os.path.exists(os.path.join(results["export_dir"], "saved_model.pb"))


def test_evaluation_is_one_pass_equal_to_keras_evaluate_and_predict(processed_dir, tmp_path):
    """`_evaluate` gives Keras' evaluate losses and predict-based metrics; the
    final results of train_and_eval reuse the last epoch's evaluation, equal
    to a fresh --mode=eval of the saved weights."""
    from din_tf import models
    from din_tf.experiments import evaluation, inputs

    cfg = _tiny(processed_dir, model="dien_repo/DIEN")
    model_dir = str(tmp_path / "run")
    results = runner.run(cfg, model_dir, "train_and_eval", export=False)
    last = json.load(open(os.path.join(model_dir, "metrics.json")))[-1]
    assert results == {k[len("test_"):]: v for k, v in last.items() if k.startswith("test_")}
    again = runner.run(cfg, model_dir, "eval", export=False)
    assert again.keys() == results.keys()
    for key in results:
        np.testing.assert_allclose(again[key], results[key], rtol=1e-5, err_msg=key)

    data = inputs.load(cfg.data, str(tmp_path / "prepared"))
    model = models.get_model(cfg.model.name, n_users=data.n_users, n_items=data.n_items,
                             n_categories=data.n_categories)
    model.compile()
    model.load_weights(os.path.join(model_dir, "final.weights.h5"))
    test_ds, order = inputs.test_set(data, cfg.data, model.uses_aux_loss, cfg.runtime.seed)
    one_pass = runner._evaluate(model, runner.TestSet(test_ds, order, data,
                                                      cfg.evaluation.scoring))
    keras_losses = model.evaluate(test_ds, verbose=0, return_dict=True)
    in_file_order = np.empty(len(order))
    in_file_order[order] = model.predict(test_ds, verbose=0)
    scores = evaluation.score(data.test.label, in_file_order, data.test_groups)
    assert one_pass.keys() == {**keras_losses, **scores}.keys()
    # Keras averages the batch losses in float32, the runner in float64.
    for key, value in keras_losses.items():
        np.testing.assert_allclose(one_pass[key], value, rtol=1e-4, err_msg=key)
    for key, value in scores.items():
        np.testing.assert_allclose(one_pass[key], value, rtol=1e-6, err_msg=key)
    np.testing.assert_allclose(one_pass["auc"], results["auc"], rtol=1e-5)


def test_mini_batch_aware_frequencies_follow_each_models_schema(processed_dir):
    """Each embedding table gets the training counts of the feature its
    model's schema reads through it (DeepFM's linear tables included)."""
    from din_tf import models
    from din_tf.data.frequency import feature_frequencies
    from din_tf.experiments import inputs
    cfg = C.ExperimentConfig()
    cfg.data.processed_dir = processed_dir
    data = inputs.load(cfg.data, None)
    counts = feature_frequencies(data.train, data.n_users, data.n_items, data.n_categories)
    expected = {"dien_repo/DIN": {"uid_embedding": "user_id", "mid_embedding": "item_id",
                                  "cat_embedding": "category_id"},
                "baseline/DeepFM": {"uid_embedding": "user_id", "mid_embedding": "item_id",
                                    "cat_embedding": "category_id", "uid_linear": "user_id",
                                    "mid_linear": "item_id", "cat_linear": "category_id"},
                "din_repo/din": {"item_embedding": "item_id",
                                 "category_embedding": "category_id"}}
    for name, tables in expected.items():
        model = models.get_model(name, n_users=data.n_users, n_items=data.n_items,
                                 n_categories=data.n_categories)
        frequencies = runner._frequency_tables(model, data)
        assert sorted(frequencies) == sorted(tables)
        for table, feature in tables.items():
            np.testing.assert_array_equal(frequencies[table], counts[feature])


def test_a_config_files_own_log_paths_are_read_next_to_it(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"data": {"log_spec": "spec.json", "schema": "/abs/schema.json",
                                         "protocol": "din"}}))
    cfg = resolve_config("own_log/DIN", str(path))
    assert cfg.data.log_spec == str(tmp_path / "spec.json")
    assert cfg.data.schema == "/abs/schema.json"
    assert cfg.model.name == "dien_repo/DIN" and cfg.evaluation.scoring == "served"
