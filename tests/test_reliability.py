"""Bad data and settings are refused at the boundary with errors that name the
key, feature or file (issue 14): experiment configs, Samples, raw Amazon
files, model and serving inputs; empty histories score; a failed start leaves
model_dir untouched; the command lines report bad input in one line, exit 2,
and start quietly."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from din_tf import models
from din_tf.data import prepare
from din_tf.data.samples import Samples
from din_tf.models import ORIGINAL_MODELS
from din_tf.experiments import config as C
from din_tf.experiments import registry, runner
from din_tf.experiments.run import resolve_config
from tests.data import amazon_fixtures as fx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ (a) configs

@pytest.mark.parametrize("override, message", [
    ("data.train_batch_size=-5", r"data.train_batch_size=-5; expected an integer >= 1"),
    ("data.eval_batch_size=0", r"data.eval_batch_size=0; expected an integer >= 1"),
    ("trainer.epochs=0", r"trainer.epochs=0; expected an integer >= 1"),
    ("trainer.epochs=1.5", r"trainer.epochs=1.5; expected an integer >= 1"),
    ("trainer.epochs=true", r"trainer.epochs=True; expected an integer >= 1"),
    ("trainer.steps_per_epoch=-1", r"trainer.steps_per_epoch=-1; expected null or an integer"),
    ("trainer.learning_rate=-0.1", r"trainer.learning_rate=-0.1; expected null or a finite "
                                   r"number > 0"),
    ("trainer.learning_rate=\"fast\"", r"trainer.learning_rate='fast'"),
    ("data.shuffle=maybe", r"data.shuffle='maybe'; expected true or false"),
    ("data.batching=sorted", r"data.batching='sorted'; expected one of \['sequential'"),
    ("data.shuffle=true", r"data.shuffle=True; expected false / null with "
                          r"data.batching='dien_iterator'"),
    ("data.bucket_boundaries=[5,10]", r"data.bucket_boundaries=\[5, 10\]; expected false"),
    ("evaluation.scoring=batch", r"evaluation.scoring='batch'; expected one of \['served'"),
    ("runtime.jit_compile=1", r"runtime.jit_compile=1; expected true or false"),
    ("trainer.optimizer=adamw", r"trainer.optimizer='adamw'; expected one of \['original'"),
    ("data.protocol=books", r"data.protocol='books'; expected one of \['dien', 'din'\]"),
    ("runtime.strategy=tpu", r"runtime.strategy='tpu'; expected one of \['default'"),
    ("trainer.embedding_update=sparse", r"trainer.embedding_update='sparse'; expected null or "
                                        r"one of \['dense', 'rows'\]"),
    ("export.dice_statistics=mean", r"export.dice_statistics='mean'; expected one of "
                                    r"\['moving', 'batch'\]"),
    ("data.bucket_boundaries=[20,10]", r"data.bucket_boundaries=\[20, 10\]; expected null or a "
                                       r"list of ascending positive integers"),
    ("data.bucket_boundaries=[0,10]", r"data.bucket_boundaries=\[0, 10\]"),
    ("data.maxlen=0", r"data.maxlen=0; expected null or an integer >= 1"),
    ("data.num_negatives=0", r"data.num_negatives=0; expected an integer >= 1"),
    ("trainer.mba_strength=-1", r"trainer.mba_strength=-1; expected a finite number >= 0"),
    ("trainer.gradient_clip_norm=0", r"trainer.gradient_clip_norm=0; expected null or a finite"),
    ("trainer.steps_per_execution=0", r"trainer.steps_per_execution=0"),
    ("runtime.seed=-3", r"runtime.seed=-3; expected an integer >= 0"),
    ("model.name=dien_repo/DIEN2", r"model.name='dien_repo/DIEN2'; expected one of "
                                   r"\['dien_repo/DIEN'"),
    ("model.name=[1]", r"model.name=\[1\]; expected one of"),
    ("model.options={\"gru_typo\": \"agru\"}", r"unknown option\(s\) \['gru_typo'\] for "
                                               r"dien_repo/DIEN; expected some of .*'hidden_size'"),
    ("model.options={\"use_aux_loss\": false}", r"\['use_aux_loss'\] are fixed by "
                                                r"dien_repo/DIEN"),
])
def test_config_validate_names_the_key_the_value_and_the_expectation(override, message):
    cfg = resolve_config("default", params_override=override)
    with pytest.raises(ValueError, match=message):
        cfg.validate()


def test_every_named_experiment_and_option_of_every_model_validates():
    for name in registry.EXPERIMENTS:
        registry.get_experiment(name).validate()
    cfg = resolve_config("dien_repo/DIN-V2-gru-att-gru@din", params_override=json.dumps({
        "model": {"options": {"hidden_size": 8, "embedding_dim": 4, "preset": "paper",
                              "aux_loss_weight": 0.5}},
        "data": {"bucket_boundaries": [10, 20], "maxlen": None, "batching": "sequential"},
        "trainer": {"learning_rate": 0.01, "steps_per_epoch": None}}))
    assert cfg.validate() is cfg
    din_repo = resolve_config("din_repo/din@din", params_override=json.dumps(
        {"model": {"options": {"item_dim": 8, "attention_softmax": True}}}))
    din_repo.validate()


# ------------------------------------------------------ (5) failed starts



def _tiny(processed_dir, **override):
    values = {"data": {"processed_dir": processed_dir, "train_batch_size": 64,
                       "eval_batch_size": 1024},
              "trainer": {"epochs": 1, "steps_per_epoch": 2}}
    for key, value in override.items():
        section, name = key.split(".")
        values.setdefault(section, {})[name] = value
    return resolve_config("dien_repo/DNN@dien", params_override=json.dumps(values))


def test_a_failed_start_writes_nothing_and_the_corrected_command_runs(processed_dir, tmp_path,
                                                                     capsys, monkeypatch):
    model_dir = tmp_path / "run"
    failures = [
        (dict(**{"data.train_batch_size": -5}), r"data.train_batch_size=-5"),
        (dict(**{"model.name": "dien_repo/DNNN"}), r"model.name='dien_repo/DNNN'"),
        (dict(**{"model.options": {"activation": "relu"}}),
         r"model.options=\{'activation': 'relu'\} for dien_repo/DNN: Invalid activation"),
        (dict(**{"export.dice_statistics": "both"}), r"export.dice_statistics='both'"),
        (dict(**{"data.processed_dir": str(tmp_path / "nowhere")}), r"nowhere"),
    ]
    for override, message in failures:
        with pytest.raises(ValueError, match=message):
            runner.run(_tiny(processed_dir, **override), str(model_dir), "train", export=False)
        assert not (model_dir / "config.json").exists(), override
    # On a terminal Keras draws its progress bar without ending the line: the
    # per-epoch summary must start a line of its own.
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    capsys.readouterr()
    runner.run(_tiny(processed_dir), str(model_dir), "train_and_eval", export=False)
    out = capsys.readouterr().out
    summary = [s for s in out.split("\n") if "test_auc=" in s]
    assert summary and all(s.startswith("epoch 1: ") for s in summary), repr(out[-600:])
    written = json.loads((model_dir / "config.json").read_text())
    assert written["data"]["train_batch_size"] == 64
    assert json.loads((model_dir / "state.json").read_text()) == {"completed_epochs": 1}
    # The comparison with an existing run still happens first, and writes nothing.
    other = _tiny(processed_dir, **{"data.train_batch_size": 32})
    with pytest.raises(runner.RunnerError, match=r"different config \(changed: "
                                                 r"data.train_batch_size\)"):
        runner.run(other, str(model_dir), "train", export=False)
    assert json.loads((model_dir / "config.json").read_text()) == written


# ------------------------------------------------------------ (b) Samples

def _samples(**override):
    values = dict(user_id=[1, 2], item_id=[3, 4], category_id=[1, 1], label=[0.0, 1.0],
                  history_items=[[1, 2], [3]], history_categories=[[1, 1], [1]])
    values.update(override)
    return Samples.from_lists(**values)


@pytest.mark.parametrize("override, message", [
    (dict(label=[np.nan, 1.0]), r"Samples.label: expected 0 or 1 in every row, got nan at row 0"),
    (dict(label=[0.0, np.inf]), r"got inf at row 1"),
    (dict(label=[2.0, 1.0]), r"got 2.0 at row 0"),
    (dict(label=[0.0, -1.0]), r"got -1.0 at row 1"),
    (dict(item_id=[3, -4]), r"Samples.item_id: expected ids >= 0, got -4 at index 1"),
    (dict(user_id=[-1, 2]), r"Samples.user_id: expected ids >= 0, got -1"),
    (dict(history_items=[[1, -2], [3]]), r"Samples.steps_item_id: expected ids >= 0, got -2"),
    (dict(item_id=[3.5, 4.0]), r"Samples.item_id: expected integer ids, got 3.5"),
    (dict(category_id=[1, 2 ** 40]), r"Samples.category_id: expected ids that fit int32"),
])
def test_samples_refuse_labels_outside_0_1_and_bad_ids(override, message):
    with pytest.raises(ValueError, match=message):
        _samples(**override)
    assert len(_samples()) == 2
    assert _samples(item_id=[3.0, 4.0]).item_id.tolist() == [3, 4]  # integral floats are ids


# --------------------------------------------------------- (c) raw Amazon

def test_meta_missing_most_reviewed_items_is_an_error_naming_both_files(tmp_path):
    kept = dict(list(fx.CATEGORIES.items())[:2])  # 2 of the 10 reviewed items
    r, m = fx.write_amazon(tmp_path, meta=fx.meta_lines(kept))
    for protocol in ("dien", "din"):
        with pytest.raises(ValueError, match=(
                rf"8 of the 10 items reviewed in {r} \(80%\) have no categories in {m}; "
                r"expected at most 50% missing")):
            prepare.run(protocol, tmp_path / protocol, reviews=r, meta=m,
                        missing_category="drop")
        assert not (tmp_path / protocol).exists()


def test_a_few_items_without_meta_stay_a_logged_warning(tmp_path, caplog):
    kept = dict(list(fx.CATEGORIES.items())[1:])  # I1 has no meta
    r, m = fx.write_amazon(tmp_path, meta=fx.meta_lines(kept))
    caplog.set_level("INFO", logger="absl")  # absl may have been set to WARNING before
    counts = prepare.run("dien", tmp_path / "out", reviews=r, meta=m, seed=1)
    assert counts["train_users"] + counts["test_users"] == 5
    warnings = [rec.getMessage() for rec in caplog.records if rec.levelname == "WARNING"]
    assert any("1 of the 10 items reviewed" in w and "(10%)" in w for w in warnings), warnings
    # Preparation reports its stages at INFO (a real Amazon file takes minutes).
    stages = [rec.getMessage() for rec in caplog.records if rec.levelname == "INFO"]
    for stage in (f"reading reviews from {r}", "read 21 reviews of 10 items; reading their "
                  f"categories from {m}", "read categories for 9 of the 10 reviewed items",
                  "building the dien protocol's samples", f"writing {tmp_path / 'out'}"):
        assert stage in stages, (stage, stages)


# ----------------------------------------------------- (d) model inputs

B, T = 3, 4


def _features(**override):
    features = {
        "user_id": np.array([1, 2, 3], "int32"), "item_id": np.array([1, 5, 6], "int32"),
        "category_id": np.array([1, 2, 3], "int32"),
        "history_item_ids": np.array([[1, 2, 0, 0], [3, 4, 5, 6], [2, 0, 0, 0]], "int32"),
        "history_category_ids": np.array([[1, 1, 0, 0], [2, 2, 3, 3], [1, 0, 0, 0]], "int32"),
        "history_length": np.array([2, 4, 1], "int32"),
    }
    features.update(override)
    return features


BAD_INPUTS = [
    (dict(item_id=np.array([1.0, 5.0, 6.0], "float32")),
     r"feature 'item_id' has dtype float32; expected int32 \(or int64\) ids"),
    (dict(history_length=np.array([2.0, 4.0, 1.0])),  # Keras makes float64 float32
     r"feature 'history_length' has dtype float32; expected int32 \(or int64\) step counts"),
    (dict(history_item_ids=np.ones((B, T, 1), "int32")),
     r"feature 'history_item_ids' has shape \(3, 4, 1\); expected \[B, T\]"),
    (dict(item_id=np.ones((B, 2), "int32")),
     r"feature 'item_id' has shape \(3, 2\); expected \[B\] or \[B, 1\]"),
    (dict(history_category_ids=np.ones((B, T - 1), "int32")),
     r"feature 'history_category_ids' has history width T 3 but 'history_item_ids' has 4"),
    (dict(category_id=np.ones((B + 1,), "int32")),
     r"feature 'category_id' has batch size 4 but 'user_id' has 3"),
    (dict(history_length=np.array([2, 5, 1], "int32")),
     r"feature 'history_length' must lie in \[0, T\], T being the width of "
     r"'history_item_ids' = 4; received 5"),
    (dict(history_length=np.array([2, -1, 1], "int32")),
     r"feature 'history_length' must lie in \[0, T\].* = 4; received -1"),
]


@pytest.mark.parametrize("override, message", BAD_INPUTS)
def test_eager_calls_name_the_bad_feature(override, message):
    model = models.get_model("dien_repo/DIN", n_users=5, n_items=8, n_categories=4)
    with pytest.raises(ValueError, match=f"DIN: {message}"):
        model(_features(**override))


def test_graph_calls_assert_what_only_values_or_dynamic_shapes_decide():
    model = models.get_model("dien_repo/DIEN", n_users=5, n_items=8, n_categories=4)
    signature = {k: tf.TensorSpec([None] * v.ndim, tf.int32) for k, v in _features().items()}
    step = tf.function(lambda x: model(x), input_signature=[signature])
    assert np.all(np.isfinite(step(_features())))
    cases = [(dict(history_length=np.array([2, 5, 1], "int32")),
              r"DIEN: feature history_length must lie in \[0, T\]"),
             (dict(history_length=np.array([2, -1, 1], "int32")),
              r"DIEN: feature history_length must lie in \[0, T\]"),
             (dict(history_category_ids=np.ones((B, T - 1), "int32")),
              r"DIEN: features history_item_ids, history_category_ids differ in history "
              r"width T \(in this order\):\] \[4 3\]"),
             (dict(item_id=np.ones((B + 1,), "int32")),
              r"DIEN: features user_id, item_id, category_id, history_item_ids, "
              r"history_category_ids, history_length differ in batch size \(in this order\):\] "
              r"\[3 4 3 3 3 3\]")]
    for override, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            step(_features(**override))


def test_int64_ids_are_accepted_and_score_as_int32():
    model = models.get_model("dien_repo/DIEN", n_users=5, n_items=8, n_categories=4)
    as_int64 = {k: v.astype("int64") for k, v in _features().items()}
    np.testing.assert_array_equal(model(as_int64), model(_features()))


def _empty_histories(steps=0):
    return _features(history_item_ids=np.zeros((B, steps), "int32"),
                     history_category_ids=np.zeros((B, steps), "int32"),
                     history_length=np.zeros((B,), "int32"),
                     negative_item_ids=np.ones((B, steps, 5), "int32"),
                     negative_category_ids=np.ones((B, steps, 5), "int32"))


@pytest.mark.parametrize("name", sorted(ORIGINAL_MODELS))
def test_users_without_history_get_a_score_from_every_model(name):
    model = models.get_model(name, n_users=5, n_items=8, n_categories=4)
    model.compile()
    for features in (_empty_histories(0), _empty_histories(2)):  # T = 0; T = 2, all padding
        eager = np.asarray(model(features))
        traced = np.asarray(tf.function(lambda x: model(x))(features))
        assert eager.shape == (B,) and np.all((eager > 0) & (eager < 1)), (name, eager)
        np.testing.assert_allclose(traced, eager, rtol=1e-6)
    # One training step through the GRUs' backward pass and the aux loss (DIEN)
    # and through the DIN repo's mean pooling (base), with nothing to pool.
    if name in ("dien_repo/DIEN", "din_repo/base"):
        logs = model.train_on_batch(_empty_histories(0), np.array([1.0, 0.0, 1.0], "float32"),
                                    return_dict=True)
        assert all(np.isfinite(v) for v in logs.values()), logs
        assert all(np.all(np.isfinite(w)) for w in model.get_weights()), name


def test_the_serving_signature_names_the_bad_feature(tmp_path):
    from din_tf.export import export_saved_model
    model = models.get_model("dien_repo/DIN", n_users=5, n_items=8, n_categories=4)
    serve = tf.saved_model.load(
        str(export_saved_model(model, tmp_path / "1"))).signatures["serving_default"]
    good = {k: tf.constant(v) for k, v in _features().items()}
    assert np.all(np.isfinite(serve(**good)["probability"]))
    empty = {k: tf.constant(v) for k, v in _empty_histories(0).items()
             if not k.startswith("negative")}
    assert np.all(np.isfinite(serve(**empty)["probability"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"history_length must lie in"):
        serve(**{**good, "history_length": tf.constant([2, 9, 1])})
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"features history_item_ids, history_category_ids differ in "
                             r"history width T"):
        serve(**{**good, "history_category_ids": tf.ones((B, T + 2), tf.int32)})


# ------------------------------------------------------- (6, 8) command lines

def _cases(module, cases, tmp_path):
    """Runs the cases in one child process (tests/_cli_cases.py)."""
    proc = subprocess.run([sys.executable, "-m", "tests._cli_cases", module, json.dumps(cases)],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=REPO))
    line = [s for s in proc.stdout.splitlines() if s.startswith("CASES-JSON ")]
    assert line, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(line[-1][len("CASES-JSON "):])


def _assert_one_error_line(result, *words):
    stderr = result["stderr"]
    assert result["code"] == 2, result
    assert "Traceback" not in stderr, stderr
    errors = [s for s in stderr.splitlines() if s.startswith("error: ")]
    assert len(errors) == 1, stderr
    for word in words:
        assert word in errors[0], (word, errors[0])


def _truncated_copy(path, target):
    data = open(path, "rb").read()
    with open(target, "wb") as f:
        f.write(data[: len(data) // 2])
    return str(target)


def test_runner_command_reports_bad_input_in_one_line_with_exit_code_2(processed_dir,
                                                                       tmp_path):
    truncated = _truncated_copy(C.BUNDLED_REVIEWS, tmp_path / "reviews_Trunc_5.json.gz")
    empty = tmp_path / "empty"
    empty.mkdir()
    din_dir = tmp_path / "din_files"  # the DIN protocol's file names are all it takes
    din_dir.mkdir()
    for name in ("train_set.csv", "test_set.csv", "cate_list.csv"):
        (din_dir / name).write_text("")
    run_dir = str(tmp_path / "run")
    cases = {
        "truncated gzip": ([f"--reviews={truncated}"], [truncated, "truncated or corrupt"]),
        "missing dir": ([f"--processed_dir={tmp_path / 'nope'}"],
                        ["data.processed_dir", "nope", "is not a directory"]),
        "empty dir": ([f"--processed_dir={empty}"], ["data.processed_dir", "lacks the dien"]),
        "wrong protocol": ([f"--processed_dir={din_dir}"],
                           ["lacks the dien", "data.protocol=din"]),
        "fractional epochs": (["--params_override=trainer.epochs=1.5"], ["trainer.epochs=1.5"]),
        "zero epochs": (["--epochs=0"], ["trainer.epochs=0"]),
        "negative steps": (["--steps_per_epoch=-1"], ["trainer.steps_per_epoch=-1"]),
        "flag type": (["--epochs=1.5"], ["--epochs"]),
    }
    corrected = ["--experiment=dien_repo/DNN@dien", f"--processed_dir={processed_dir}",
                 "--params_override=trainer.steps_per_epoch=2,data.eval_batch_size=4096"]
    results = _cases("din_tf.experiments.run", [argv + [f"--model_dir={run_dir}", "--noexport"]
                                         for argv, _ in cases.values()] +
                     [corrected + [f"--model_dir={run_dir}", "--noexport"]], tmp_path)
    for (name, (_, words)), result in zip(cases.items(), results):
        _assert_one_error_line(result, *words)
    # The corrected command runs in the same model_dir; its last line names the experiment.
    assert results[-1]["code"] == 0, results[-1]["stderr"][-3000:]
    assert results[-1]["stdout"].splitlines()[-1] == (
        f"experiment dien_repo/DNN@dien (dien_repo/DNN, dien protocol, --mode=train_and_eval) "
        f"finished; outputs in {run_dir}")


def test_prepare_command_reports_bad_input_in_one_line_with_exit_code_2(tmp_path):
    r, m = fx.write_amazon(tmp_path)
    truncated = _truncated_copy(C.BUNDLED_META, tmp_path / "meta_Trunc.json.gz")
    out = str(tmp_path / "out")
    cases = {
        "missing file": ([f"--reviews={tmp_path / 'absent.json'}", f"--meta={m}"],
                         ["absent.json"]),
        "truncated gzip": ([f"--reviews={C.BUNDLED_REVIEWS}", f"--meta={truncated}"],
                           [truncated, "truncated or corrupt"]),
        "one input of two": ([f"--reviews={r}"], ["--reviews and --meta"]),
        "no protocol": ([f"--reviews={r}", f"--meta={m}", "--protocol="], ["--protocol"]),
    }
    argvs = [argv + [f"--output_dir={out}"] + ([] if "--protocol=" in argv else
                                               ["--protocol=dien"]) for argv, _ in
             cases.values()]
    results = _cases("din_tf.data.prepare", argvs + [["--help"]], tmp_path)
    for (name, (_, words)), result in zip(cases.items(), results):
        _assert_one_error_line(result, *words)
    assert results[-1]["code"] == 0, results[-1]  # --help


def _tensorflow_log_lines(stderr):
    return [s for s in stderr.splitlines()
            if s[:5] in ("I0000", "W0000", "E0000") or "absl::InitializeLog" in s]


def test_the_runner_starts_quietly_and_help_exits_0():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "din_tf.experiments.run", "--help"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--params_override" in proc.stdout and "--[no]verbose_tf" in proc.stdout
    assert _tensorflow_log_lines(proc.stderr) == [], proc.stderr


@pytest.mark.slow
def test_verbose_tf_brings_the_tensorflow_log_back():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "din_tf.experiments.run", "--verbose_tf", "--help"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0
    assert _tensorflow_log_lines(proc.stderr), proc.stderr
