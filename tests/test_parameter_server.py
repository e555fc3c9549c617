"""ParameterServerStrategy on localhost: a chief (tests/_ps_jobs.py), workers
and parameter servers (`python -m din_tf.cluster_task`), each a real process
with its own TF_CONFIG and free ports.

Tables are split in row shards over both parameter servers; training is
asynchronous over two workers; with one worker and a wait after each step it
equals one process's training; a checkpointed run survives a SIGKILLed worker
and resumes from its checkpoint; the gathered model exports a SavedModel that
serves what the trained model predicts.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests._ps_jobs import SYNC_STEPS
from tests.test_distribute import ROOT, _free_ports, _leftover_output

TIMEOUT = 300


class Cluster:
    """Worker and parameter-server processes on 127.0.0.1, and the chief's
    TF_CONFIG."""

    def __init__(self, workers, ps):
        ports = _free_ports(1 + workers + ps)
        address = [f"127.0.0.1:{port}" for port in ports]
        self.spec = {"chief": address[:1], "worker": address[1:1 + workers],
                     "ps": address[1 + workers:]}
        self.tasks = {}
        for task_type in ("worker", "ps"):
            for index in range(len(self.spec[task_type])):
                self.start_task(task_type, index)

    def _environment(self, task_type, index):
        return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": json.dumps(
            {"cluster": self.spec, "task": {"type": task_type, "index": index}})}

    def start_task(self, task_type, index):
        self.tasks[(task_type, index)] = subprocess.Popen(
            [sys.executable, "-m", "din_tf.cluster_task"], cwd=ROOT,
            env=self._environment(task_type, index), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)

    def chief(self, *args):
        return subprocess.Popen([sys.executable, "-m", "tests._ps_jobs", *args], cwd=ROOT,
                                env=self._environment("chief", 0), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def stop(self):
        for process in self.tasks.values():
            process.kill()
        for process in self.tasks.values():
            process.wait()


@pytest.fixture
def cluster_factory():
    clusters = []

    def make(workers, ps):
        clusters.append(Cluster(workers, ps))
        return clusters[-1]

    yield make
    for cluster in clusters:
        cluster.stop()


def _finish(chief, timeout=TIMEOUT):
    try:
        out, _ = chief.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        chief.kill()
        pytest.fail("chief exceeded its deadline: " + _leftover_output(chief))
    assert chief.returncode == 0, out[-6000:]
    return out


def _ps_devices(sharding):
    """{weight path: sorted "job:task" of its shards}."""
    def task(device):
        parts = dict(p.split(":", 1) for p in device.strip("/").split("/"))
        return f"{parts['job']}:{parts['task']}"
    return {path: sorted(task(d) for d in devices)
            for path, devices in json.loads(str(sharding)).items()}


def test_din_trains_asynchronously_with_tables_sharded_over_both_ps(cluster_factory,
                                                                      tmp_path):
    """The spike: DIN (LazyAdam row updates, MBA L2) on 2 workers and 2 PS;
    each embedding table is two shards, one per PS; the loss goes down; the
    gathered model exports a SavedModel that serves its predictions."""
    cluster = cluster_factory(workers=2, ps=2)
    out = str(tmp_path / "train.npz")
    steps = 96
    _finish(cluster.chief("train", out, "din_rows", str(steps)))
    result = np.load(out)
    sharding = _ps_devices(result["sharding"])
    tables = [p for p in sharding if p.endswith("_embedding/embeddings")]
    assert sorted(tables) == [f"{t}_embedding/embeddings" for t in ("cat", "mid", "uid")]
    for table in tables:
        assert sharding[table] == ["ps:0", "ps:1"], table
    assert not any("/kernel" in p for p in sharding)  # below MIN_SHARD_BYTES: whole
    assert int(result["trained"]) == steps
    loss = result["loss"]  # the mean of each 2 steps
    assert np.mean(loss[-4:]) < 0.8 * np.mean(loss[:4]), loss
    assert np.all(result["reg_loss"] > 0)
    _assert_serves_the_trained_model(result)


def _assert_serves_the_trained_model(result):
    # The export scores a row over its own steps; `predict` (the DIEN repo as
    # coded) also sums the padded ones: compare the rows with no padding.
    full = result["full_history"]
    assert 0 < full.sum() < len(full)
    np.testing.assert_allclose(result["served"].reshape(-1)[full], result["probability"][full],
                               rtol=1e-5, atol=1e-6)


def test_dien_auxiliary_loss_under_parameter_servers(cluster_factory, tmp_path):
    cluster = cluster_factory(workers=2, ps=2)
    out = str(tmp_path / "train.npz")
    _finish(cluster.chief("train", out, "dien_dense", "16"))
    result = np.load(out)
    assert np.all(result["aux_loss"] > 0)
    assert int(result["trained"]) == 16
    _assert_serves_the_trained_model(result)


@pytest.fixture(scope="module")
def sync_runs(tmp_path_factory):
    cluster = Cluster(workers=1, ps=2)
    try:
        out = str(tmp_path_factory.mktemp("sync") / "sync.npz")
        _finish(cluster.chief("sync", out, "din_rows,dien_dense,din_repo_sgd,dnn_adagrad"))
        return dict(np.load(out))
    finally:
        cluster.stop()


@pytest.mark.parametrize("name", ["din_rows", "dien_dense", "din_repo_sgd", "dnn_adagrad"])
def test_one_synchronous_worker_equals_one_process(sync_runs, name):
    """Row updates (LazyAdam, SGD with clipping, Adagrad) and dense Adam on
    sharded tables, with the auxiliary loss and MBA L2: per-step losses and
    every weight after SYNC_STEPS steps equal one process's `train_on_batch`."""
    runs = sync_runs
    assert _ps_devices(runs[f"{name}/sharding"])  # something was sharded
    ps_loss, one_loss = runs[f"{name}/ps_loss"], runs[f"{name}/one_loss"]
    assert ps_loss.shape == (SYNC_STEPS,)
    np.testing.assert_allclose(ps_loss, one_loss, rtol=1e-5)
    count = sum(k.startswith(f"{name}/ps_weight/") for k in runs)
    moved = 0.0
    for i in range(count):
        ps, one = runs[f"{name}/ps_weight/{i}"], runs[f"{name}/one_weight/{i}"]
        np.testing.assert_allclose(ps, one, atol=1e-5, err_msg=f"weight {i}")
        moved = max(moved, float(np.max(np.abs(one - runs[f"{name}/initial/{i}"]))))
    assert moved > 1e-3


def test_every_model_trains_on_parameter_servers(cluster_factory, tmp_path):
    """Every model in `din_tf.models.MODELS` with its original optimizer and
    embedding update (dense Adam, SGD with clipping, Dice in training), and a
    DIEN over a feature schema: steps on 2 workers, tables sharded, finite
    losses, and the gathered model predicts."""
    from din_tf import models
    cluster = cluster_factory(workers=2, ps=2)
    out = str(tmp_path / "every.npz")
    _finish(cluster.chief("every_model", out, "4"))
    result = np.load(out)
    for name in [*models.MODELS, "schema/DIEN"]:
        assert int(result[f"{name}/trained"]) == 4, name
        assert int(result[f"{name}/sharded"]) >= 1, name
        assert np.all(np.isfinite(result[f"{name}/loss"])), name
        probability = result[f"{name}/probability"].reshape(-1)
        assert np.all((probability > 0) & (probability < 1)), name


def test_each_worker_is_told_its_own_index(cluster_factory, tmp_path):
    """TF's ParameterServerStrategy tells every worker's dataset_fn "pipeline
    0 of 1"; the trainer's input context carries the worker's real index and
    the worker count, so workers read different shares."""
    cluster = cluster_factory(workers=2, ps=1)
    out = str(tmp_path / "shards.npz")
    _finish(cluster.chief("input_shards", out))
    told = np.load(out)["told"]
    assert set(told[:, 1].tolist()) == {2}
    assert set(told[:, 0].tolist()) == {0, 1}


def test_killed_worker_is_survived_and_checkpoint_resumes(cluster_factory, tmp_path):
    """SIGKILL one of two workers mid-run, then start it again (as a cluster
    manager restarts a task): the coordinator reschedules the lost steps and
    the run reaches its step count; a new chief resumes from the last
    checkpoint (the step count and every weight)."""
    cluster = cluster_factory(workers=2, ps=2)
    checkpoints, signal_file = str(tmp_path / "ckpt"), str(tmp_path / "half_done")
    first = str(tmp_path / "first.npz")
    steps = 24
    chief = cluster.chief("checkpoint", first, checkpoints, str(steps), signal_file)
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(signal_file):
        if chief.poll() is not None or time.monotonic() > deadline:
            chief.kill()
            pytest.fail("chief stopped before half-way: " + _leftover_output(chief))
        time.sleep(0.2)
    worker = cluster.tasks[("worker", 1)]
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    open(signal_file + ".go", "w").close()
    time.sleep(2)  # the chief schedules steps while the worker is down...
    cluster.start_task("worker", 1)  # ...and takes it back when it is up again
    _finish(chief)
    result = np.load(first)
    assert int(result["trained"]) == steps
    assert sorted(os.listdir(checkpoints))[-1].startswith("ckpt-")

    second = str(tmp_path / "second.npz")
    _finish(cluster.chief("checkpoint", second, checkpoints, str(steps)))
    resumed = np.load(second)
    assert int(resumed["restored"]) == steps and int(resumed["trained"]) == steps
    for key in (k for k in result if k.startswith("weight/")):
        np.testing.assert_array_equal(resumed[key], result[key], err_msg=key)


def test_cluster_task_rejects_a_bad_tf_config():
    from din_tf.cluster_task import cluster_and_task
    cluster = {"chief": ["a:1"], "worker": ["b:1"], "ps": ["c:1"]}
    assert cluster_and_task({"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "ps", "index": 0}})}) == (cluster, "ps", 0)
    with pytest.raises(ValueError, match="TF_CONFIG is not set"):
        cluster_and_task({})
    with pytest.raises(ValueError, match="task type 'chief'.*worker or ps"):
        cluster_and_task({"TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "chief", "index": 0}})})
    with pytest.raises(ValueError, match=r"task index 3 for type 'worker'.*\['b:1'\]"):
        cluster_and_task({"TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": 3}})})
    with pytest.raises(ValueError, match="Invalid TF_CONFIG='nope'"):
        cluster_and_task({"TF_CONFIG": "nope"})
    process = subprocess.run([sys.executable, "-m", "din_tf.cluster_task"], cwd=ROOT,
                             env={k: v for k, v in os.environ.items() if k != "TF_CONFIG"},
                             capture_output=True, text=True, timeout=60)
    assert process.returncode == 2 and "Traceback" not in process.stderr
    assert "TF_CONFIG is not set" in process.stderr


def test_runner_trains_evaluates_and_exports_on_parameter_servers(cluster_factory, tmp_path,
                                                                  processed_dir):
    """`python -m din_tf.experiments.run --strategy=parameter_server` on the chief:
    two epochs on the bundled data (tables split over both PS, each worker
    reading its share of the row files), an evaluation
    per epoch, a SavedModel that serves what `--mode=eval` (no cluster) scores
    from the saved weights, and a chief started again with a third epoch that
    resumes from the cluster checkpoint."""
    cluster = cluster_factory(workers=2, ps=2)
    model_dir = str(tmp_path / "run")
    override = json.dumps({
        "data": {"processed_dir": processed_dir, "train_batch_size": 64,
                 "eval_batch_size": 1024, "batching": "sequential", "shuffle": True},
        "trainer": {"epochs": 2, "steps_per_epoch": 6, "steps_per_execution": 2,
                    "optimizer": "lazy_adam", "embedding_update": "rows",
                    "mba_strength": 1e-5},
        "runtime": {"min_shard_bytes": 4096}})
    args = ["-m", "din_tf.experiments.run", "--experiment=dien_repo/DIEN@dien",
            "--strategy=parameter_server", f"--model_dir={model_dir}",
            f"--params_override={override}"]
    environment = cluster._environment("chief", 0)
    chief = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=environment,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = _finish(chief)
    assert "epoch 2: step 6/6" in out, out[-3000:]
    history = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert [row["epoch"] for row in history] == [1, 2]
    for row in history:
        assert row["reg_loss"] > 0 and row["aux_loss"] > 0 and 0 < row["test_auc"] < 1
    trained = json.load(open(os.path.join(model_dir, "eval.json")))
    assert trained["auc"] == history[-1]["test_auc"]
    assert os.path.exists(os.path.join(model_dir, "export", "1", "saved_model.pb"))
    assert sorted(os.listdir(os.path.join(model_dir, "checkpoints"))) == [
        "epoch_001.weights.h5", "epoch_002.weights.h5"]
    # The workers read the training rows from files, not from the function.
    rows_dir = os.path.join(model_dir, "prepared_data", "train_rows")
    (fingerprint,) = os.listdir(rows_dir)
    assert len(os.listdir(os.path.join(rows_dir, fingerprint))) > 2

    # A new chief with one more epoch resumes from the cluster checkpoint.
    more = subprocess.Popen([sys.executable, *args, "--epochs=3"], cwd=ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = _finish(more)
    assert "resuming after epoch 2 (step 12)" in out, out[-3000:]
    assert "epoch 1: step" not in out and "epoch 3: step 6/6" in out
    history = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert [row["epoch"] for row in history] == [1, 2, 3]
    trained = json.load(open(os.path.join(model_dir, "eval.json")))
    assert trained["auc"] == history[-1]["test_auc"]

    # --mode=eval reads final.weights.h5 on one process: no cluster, same AUC.
    alone = {k: v for k, v in environment.items() if k != "TF_CONFIG"}
    evaluation = subprocess.run([sys.executable, *args, "--mode=eval"], cwd=ROOT, env=alone,
                                capture_output=True, text=True, timeout=TIMEOUT)
    assert evaluation.returncode == 0, evaluation.stdout[-3000:] + evaluation.stderr[-3000:]
    again = json.load(open(os.path.join(model_dir, "eval.json")))
    np.testing.assert_allclose(again["auc"], trained["auc"], rtol=1e-6)


AUC_SEEDS = (1, 2, 3)


@pytest.mark.slow
def test_parameter_server_auc_is_within_the_single_machine_seed_spread(tmp_path,
                                                                      processed_dir):
    """The bundled data, DIN, 2 epochs, LazyAdam row updates, 3 seeds each:
    on one process (`--strategy=default`) and on 2 workers + 2 PS
    (asynchronous). The two means of the test AUC differ by no more than the
    seeds' spread."""
    common = {
        "data": {"processed_dir": processed_dir, "batching": "sequential", "shuffle": True},
        "trainer": {"epochs": 2, "optimizer": "lazy_adam", "embedding_update": "rows"}}
    one_process = json.dumps(common)
    override = json.dumps({**common, "runtime": {"min_shard_bytes": 4096}})
    aucs = {"default": [], "parameter_server": []}
    for strategy in aucs:
        for seed in AUC_SEEDS:
            model_dir = str(tmp_path / f"{strategy}_{seed}")
            args = [sys.executable, "-m", "din_tf.experiments.run", "--experiment=dien_repo/DIN@dien",
                    f"--strategy={strategy}", f"--seed={seed}", f"--model_dir={model_dir}",
                    "--export=false"]
            if strategy == "default":
                run = subprocess.run(args + [f"--params_override={one_process}"], cwd=ROOT,
                                     capture_output=True, text=True, timeout=1800)
                assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
            else:
                cluster = Cluster(workers=2, ps=2)
                try:
                    chief = subprocess.Popen(args + [f"--params_override={override}"], cwd=ROOT,
                                             env=cluster._environment("chief", 0),
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             text=True)
                    _finish(chief, timeout=1800)
                finally:
                    cluster.stop()
            aucs[strategy].append(json.load(open(os.path.join(model_dir, "eval.json")))["auc"])
    one, ps = np.array(aucs["default"]), np.array(aucs["parameter_server"])
    print(f"test AUC, one process: {one.round(4)}; parameter servers: {ps.round(4)}")
    spread = max(np.ptp(one), np.ptp(ps))
    assert abs(ps.mean() - one.mean()) <= spread, (one, ps)
    assert one.mean() > 0.55  # the runs learned something
