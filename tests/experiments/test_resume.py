"""Resume is exact: a runner killed with SIGKILL (mid-epoch, while writing a
backup, while preparing its data) and started again with the same command
ends with the weights and metrics of a run never interrupted, bit for bit.

The kills are real: the runner runs as a child process and the test sends
SIGKILL. To hit a precise moment the child is asked (environment variables,
`din_tf._pause_for_kill_test`) to write a marker file and sleep at that
point; the test waits for the marker, then kills.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from din_tf import _pause_for_kill_test as pause
from din_tf.experiments import config as C
from din_tf.experiments import runner
from din_tf.experiments.run import resolve_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# DIEN (aux-loss negatives, Adam, halved rate) on the bundled raw files, which
# the runner prepares itself; 3 short epochs.
DIEN_RUN = {"data": {"train_batch_size": 32, "eval_batch_size": 4096},
            "trainer": {"epochs": 3, "steps_per_epoch": 4, "halve_lr_each_epoch": True}}
DIEN_REPO_RATES = [1e-3, 5e-4, 2.5e-4]


def _command(model_dir, override=DIEN_RUN, *extra):
    return [sys.executable, "-m", "din_tf.experiments.run", "--experiment=default",
            f"--model_dir={model_dir}", f"--params_override={json.dumps(override)}",
            "--noexport", *extra]


def _env(point=None, marker=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop(pause.POINT_VARIABLE, None)
    if point is not None:
        env[pause.POINT_VARIABLE] = point
        env[pause.MARKER_VARIABLE] = str(marker)
    return env


def _run(command, log):
    with open(log, "w") as out:
        proc = subprocess.run(command, cwd=REPO, env=_env(), stdout=out,
                              stderr=subprocess.STDOUT, timeout=900)
    assert proc.returncode == 0, open(log).read()[-3000:]


def _kill_at(point, command, log, marker, before_kill=None):
    """Starts `command`, waits until it pauses at `point`, calls
    `before_kill(detail)` and SIGKILLs it."""
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=_env(point, marker), stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 900
            while not os.path.exists(marker):
                assert proc.poll() is None, (f"the run ended (rc {proc.returncode}) before "
                                             f"pausing at {point!r}:\n" + open(log).read()[-3000:])
                assert time.monotonic() < deadline, f"no pause at {point!r} within 900 s"
                time.sleep(0.1)
            if before_kill is not None:
                before_kill(open(marker).read())
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _arrays(path):
    """Every array of a .weights.h5 file (model and optimizer), by h5 path."""
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: found.__setitem__(name, item[()])
                     if isinstance(item, h5py.Dataset) else None)
    return found


# The epoch means of the training losses Keras logs. Their forward value (not
# the gradient) varies by one float32 ulp between two uninterrupted runs
# (seen on 2 cores: two fresh processes, identical weights, `loss` of epoch 1
# 0.84875619 vs 0.84875625), so only these are compared to 1e-6.
TRAINING_LOSS_LOGS = ("loss", "ctr_loss", "aux_loss", "reg_loss")


def _assert_same_run(model_dir, reference_dir):
    """Final weights, optimizer state and every epoch checkpoint equal exactly;
    metrics.json and eval.json too, but for TRAINING_LOSS_LOGS."""
    names = ["final.weights.h5"] + sorted(
        os.path.relpath(p, reference_dir)
        for p in glob.glob(os.path.join(reference_dir, "checkpoints", "*.weights.h5")))
    assert len(names) == 1 + DIEN_RUN["trainer"]["epochs"]
    for name in names:
        expected, got = _arrays(os.path.join(reference_dir, name)), \
            _arrays(os.path.join(model_dir, name))
        assert got.keys() == expected.keys(), name
        assert any(k.startswith("optimizer/") for k in got), name  # Adam state compared too
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{name}: {key}")
    for name in ("metrics.json", "eval.json"):
        with open(os.path.join(reference_dir, name)) as f:
            expected = json.load(f)
        with open(os.path.join(model_dir, name)) as f:
            got = json.load(f)
        rows = zip(got, expected, strict=True) if name == "metrics.json" else [(got, expected)]
        for row, expected_row in rows:
            assert row.keys() == expected_row.keys(), name
            exact = name == "eval.json"
            assert {k: v for k, v in row.items()
                    if v != expected_row[k] and (exact or k not in TRAINING_LOSS_LOGS)} == {}, \
                (name, expected_row)
            for key in ([] if exact else TRAINING_LOSS_LOGS):
                np.testing.assert_allclose(row[key], expected_row[key], rtol=1e-6,
                                           err_msg=f"{name}: {key}")
    with open(os.path.join(model_dir, "metrics.json")) as f:
        history = json.load(f)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    np.testing.assert_allclose([row["learning_rate"] for row in history], DIEN_REPO_RATES,
                               rtol=1e-6)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: the same command run once without interruption."""
    model_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    _run(_command(model_dir), str(model_dir) + ".log")
    return str(model_dir)


@pytest.mark.slow
def test_sigkill_mid_epoch_resumes_after_the_last_finished_epoch(uninterrupted, tmp_path):
    """Killed after two steps of epoch 2: the restart resumes after epoch 1
    and trains epochs 2 and 3 on the same batches, negatives and learning
    rates as the uninterrupted run."""
    model_dir = tmp_path / "run"
    _kill_at(runner.PAUSE_MID_SECOND_EPOCH, _command(model_dir), tmp_path / "killed.log",
             tmp_path / "paused")
    backups_when_killed = os.listdir(model_dir / "backup")
    _run(_command(model_dir), tmp_path / "resumed.log")
    _assert_same_run(str(model_dir), uninterrupted)
    assert backups_when_killed == ["epoch_001"]  # epoch 1 saved, epoch 2 under way
    assert "resuming after epoch 1" in open(tmp_path / "resumed.log").read()


@pytest.mark.slow
def test_sigkill_while_writing_a_backup_resumes_from_the_previous_one(uninterrupted, tmp_path):
    """Killed while epoch 2's backup is half-written (the test cuts the file
    being written in half, as an interrupted write leaves it): the restart
    must not read it and resumes after epoch 1."""
    model_dir = tmp_path / "run"

    def truncate_file_being_written(path):
        size = os.path.getsize(path)
        assert size > 0, path
        with open(path, "r+b") as f:
            f.truncate(size // 2)

    _kill_at("backup_write:2", _command(model_dir), tmp_path / "killed.log",
             tmp_path / "paused", truncate_file_being_written)
    _run(_command(model_dir), tmp_path / "resumed.log")
    _assert_same_run(str(model_dir), uninterrupted)
    assert "resuming after epoch 1" in open(tmp_path / "resumed.log").read()
    assert os.listdir(model_dir / "backup") == ["epoch_003"]  # the partial one removed


@pytest.mark.slow
def test_sigkill_during_data_preparation_then_rerun_matches(uninterrupted, tmp_path):
    """Killed while the runner prepares its data: the rerun prepares it again
    and trains as if nothing happened."""
    model_dir = tmp_path / "run"
    _kill_at("prepare_output", _command(model_dir), tmp_path / "killed.log",
             tmp_path / "paused")
    _run(_command(model_dir), tmp_path / "rerun.log")
    _assert_same_run(str(model_dir), uninterrupted)


def test_sigkill_during_data_preparation_leaves_nothing_a_rerun_trusts(tmp_path):
    """Fast version (default suite): killed after writing some prepared files,
    before they are moved into place, the next run prepares them again,
    completely (the same bytes as a clean preparation) and trains; no
    temporary folder is left."""
    from din_tf.data import prepare

    model_dir = tmp_path / "run"
    small = {"model": {"name": "dien_repo/DNN"},
             "data": {"train_batch_size": 32, "eval_batch_size": 4096},
             "trainer": {"epochs": 1, "steps_per_epoch": 1}}
    command = _command(model_dir, small, "--mode=train")
    _kill_at("prepare_output", command, tmp_path / "killed.log", tmp_path / "paused")
    left_by_kill = os.listdir(model_dir / "prepared_data")
    _run(command, tmp_path / "rerun.log")
    assert json.load(open(model_dir / "state.json")) == {"completed_epochs": 1}
    assert [name[:9] for name in left_by_kill] == [".partial-"]  # only the stage existed
    (prepared,) = os.listdir(model_dir / "prepared_data")  # no .partial-* left
    clean = tmp_path / "clean"
    prepare.run("dien", str(clean), reviews=C.BUNDLED_REVIEWS, meta=C.BUNDLED_META)
    expected = sorted(os.listdir(clean))
    assert len(expected) == 7
    assert sorted(os.listdir(model_dir / "prepared_data" / prepared)) == \
        sorted(expected + ["prepared.json"])
    for name in expected:
        with open(clean / name, "rb") as a, \
                open(model_dir / "prepared_data" / prepared / name, "rb") as b:
            assert a.read() == b.read(), name


def _tiny_dnn(processed_dir, epochs):
    return resolve_config("dien_repo/DNN@dien", params_override=json.dumps({
        "data": {"processed_dir": processed_dir, "train_batch_size": 64,
                 "eval_batch_size": 4096},
        "trainer": {"epochs": epochs, "steps_per_epoch": 2, "halve_lr_each_epoch": True}}))




def test_resumed_run_trains_each_epoch_at_the_uninterrupted_learning_rate(
        processed_dir, tmp_path, monkeypatch):
    """The DIEN repo's schedule (1e-3, halved after every epoch) holds across
    an interruption after epoch 1, as seen by the optimizer during each epoch's
    steps and as logged in metrics.json."""
    model_dir = str(tmp_path / "run")
    rates = {}

    def record_rate(self, batch, logs=None):
        rates.setdefault(self.epoch, set()).add(
            float(np.asarray(self.model.optimizer.learning_rate)))

    def remember_epoch_and_stop_at_the_second(self, epoch, logs=None):
        self.epoch = epoch
        if epoch == 1 and not rates.get("interrupted"):
            rates["interrupted"] = True
            raise KeyboardInterrupt("simulated preemption")

    monkeypatch.setattr(runner.EpochEvaluation, "on_train_batch_end", record_rate,
                        raising=False)
    monkeypatch.setattr(runner.EpochEvaluation, "on_epoch_begin",
                        remember_epoch_and_stop_at_the_second, raising=False)
    with pytest.raises(KeyboardInterrupt):
        runner.run(_tiny_dnn(processed_dir, 3), model_dir, "train_and_eval", export=False)
    runner.run(_tiny_dnn(processed_dir, 3), model_dir, "train_and_eval", export=False)
    got = [sorted(rates[epoch]) for epoch in range(3)]
    np.testing.assert_allclose(np.ravel(got), DIEN_REPO_RATES, rtol=1e-6)
    assert all(len(r) == 1 for r in got), got
    history = json.load(open(os.path.join(model_dir, "metrics.json")))
    np.testing.assert_allclose([row["learning_rate"] for row in history], DIEN_REPO_RATES,
                               rtol=1e-6)


def test_an_epochs_batches_are_a_function_of_seed_and_epoch(processed_dir, tmp_path):
    """Epoch e's batches (rows, order, sampled negatives) built fresh, as a
    restarted run builds them, equal those an uninterrupted run trains on,
    and differ from epoch to epoch (reshuffled, negatives redrawn)."""
    from din_tf.experiments import inputs

    cfg = _tiny_dnn(processed_dir, 3)
    cfg.data.batching = "sequential"  # the DIEN iterator's order is fixed; shuffle below
    data = inputs.load(cfg.data, str(tmp_path / "p"))

    def batches(epoch, steps, count=2, skip=0):
        ds = inputs.training_epoch(data, cfg.data, True, 7, epoch, steps)
        return [{k: v.numpy() for k, v in x.items()} for x, _ in ds.skip(skip).take(count)]

    def same(a, b, keys=None):
        return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b, strict=True)
                   for k in (keys or x))

    for shuffle in (False, True):
        cfg.data.shuffle = shuffle
        for steps in (None, 3):
            epoch_1 = batches(1, steps)
            assert same(batches(1, steps), epoch_1)  # rebuilt: the same batches
            assert not same(batches(0, steps), epoch_1)
        # Pass after pass the negatives are redrawn; the rows reshuffled only
        # with data.shuffle.
        pass_0, pass_1 = batches(0, None), batches(1, None)
        assert same(pass_0, pass_1, ["item_id"]) != shuffle
        assert not same(pass_0, pass_1, ["negative_item_ids"])
    # With steps_per_epoch the epochs cut one stream of passes: epoch 1 of
    # (per_pass - 1) steps starts with the last batch of pass 0 and continues
    # into pass 1, as an uninterrupted run's iterator does.
    per_pass = -(-len(data.train) // cfg.data.train_batch_size)
    from_stream = batches(0, per_pass - 1, count=3, skip=per_pass - 1)
    assert same(batches(1, per_pass - 1, count=3), from_stream)
    assert same(from_stream[1:], batches(1, None))  # pass 1 begins


def test_numbered_passes_and_the_rate_schedule_reject_bad_arguments(processed_dir, tmp_path):
    import keras

    from din_tf import training
    from din_tf.data import make_dataset
    from din_tf.experiments import inputs

    data = inputs.load(_tiny_dnn(processed_dir, 1).data, str(tmp_path / "p"))
    with pytest.raises(ValueError, match=r"'pass_index' expected None or an int >= 0, got -1"):
        make_dataset(data.train, 64, pass_index=-1)
    with pytest.raises(ValueError, match=r"'skip_batches' expected .* got 3 with "
                                         r"pass_index=None"):
        make_dataset(data.train, 64, skip_batches=3)
    with pytest.raises(ValueError, match=r"'skip_batches' goes past the single pass "
                                         r"\(562 batches\)"):
        make_dataset(data.train, 64, pass_index=0, skip_batches=600)
    with pytest.raises(ValueError, match=r"initial_learning_rate=0; expected a positive"):
        training.HalveLearningRateEachEpoch(initial_learning_rate=0)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.5)
    callback = training.HalveLearningRateEachEpoch()
    callback.set_model(keras.Sequential([keras.layers.Dense(1)]))
    callback.model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    with pytest.raises(ValueError, match=r"constant learning rate .* got "):
        callback.on_train_begin()
