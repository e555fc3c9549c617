"""tf.distribute: strategies by name; MirroredStrategy over two logical CPUs
trains exactly like one device (loss terms, MBA penalty, clipping, dense and
sparse embedding updates); MultiWorkerMirroredStrategy with two local workers.

Device configuration must precede TF's initialisation, so training runs in
fresh processes (tests/_distribute_jobs.py). The one-device and the mirrored
runs execute concurrently to halve the wall time.
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from din_tf.distribute import STRATEGY_NAMES, make_strategy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 300  # seconds per job group; a hung collective must not hang the suite
LOSS_RTOL = 1e-4
WEIGHT_ATOL = 1e-5


def _start(args, env=None):
    return subprocess.Popen([sys.executable, "-m", "tests._distribute_jobs", *args], cwd=ROOT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_all(processes, timeout=TIMEOUT):
    """Waits for every process; kills all of them past the deadline."""
    deadline = time.monotonic() + timeout
    outputs = []
    try:
        for process in processes:
            out, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outputs.append(out)
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        pytest.fail(f"distributed job exceeded {timeout} s: "
                    + "\n---\n".join(_leftover_output(p) for p in processes))
    for process, out in zip(processes, outputs):
        assert process.returncode == 0, out[-5000:]
    return outputs


def _leftover_output(process):
    try:
        return (process.communicate(timeout=5)[0] or "")[-3000:]
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return ""


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("trajectories")
    paths = {mode: str(out / f"{mode}.npz") for mode in ("one", "mirrored")}
    _wait_all([_start(["trajectories", mode, path]) for mode, path in paths.items()])
    return {mode: dict(np.load(path)) for mode, path in paths.items()}


def _weights(arrays, name, kind="weight"):
    prefix = f"{name}/{kind}/"
    return [arrays[f"{prefix}{i}"] for i in range(sum(k.startswith(prefix) for k in arrays))]


@pytest.mark.parametrize("name", ["dien_dense", "din_repo_rows", "schema_dien_rows"])
def test_mirrored_two_replicas_match_one_device(runs, name):
    """DIEN (aux loss, dense embedding updates, Adam), the DIN repo's DIN
    (rows updates with IndexedSlices, LazyAdam, clipping active at every step)
    and a DIEN built from a schema with side features (rows updates, per-table
    MBA), all with MiniBatchAwareL2: 5 steps of global batch 32."""
    one, mirrored = runs["one"], runs["mirrored"]
    assert int(one["replicas"]) == 1 and int(mirrored["replicas"]) == 2
    terms = ("loss", "ctr_loss", "aux_loss", "reg_loss") + (("auc",) if name == "din_repo_rows"
                                                          else ())
    for term in terms:
        expected = one[f"{name}/loss/{term}"]
        assert expected.shape == (5,)
        np.testing.assert_allclose(mirrored[f"{name}/loss/{term}"], expected, rtol=LOSS_RTOL,
                                   atol=1e-7, err_msg=term)
    assert np.all(one[f"{name}/loss/reg_loss"] > 0)  # the penalty is on
    if name != "din_repo_rows":
        assert np.all(one[f"{name}/loss/aux_loss"] > 0)
    trained, initial = _weights(one, name), _weights(one, name, "initial")
    distributed = _weights(mirrored, name)
    assert len(distributed) == len(trained) == len(initial)
    moved = max(np.max(np.abs(a - b)) for a, b in zip(trained, initial))
    assert moved > 1e-3  # training changed the weights...
    for a, b in zip(distributed, trained):  # ...identically under both strategies
        np.testing.assert_allclose(a, b, atol=WEIGHT_ATOL)


@pytest.mark.parametrize("name", ["dien_dense", "din_repo_rows"])
def test_runner_evaluation_under_mirrored_matches_one_device(runs, name):
    """The runner's test-set evaluation (losses, AUC, GAUC) of the trained
    models agrees across strategies (Keras' distributed evaluate and predict
    with two replicas, the runner's one-pass loop on one device)."""
    one, mirrored = runs["one"], runs["mirrored"]
    keys = sorted(k for k in one if k.startswith(f"{name}/eval/"))
    assert {k.rsplit("/", 1)[1] for k in keys} >= {"loss", "ctr_loss", "auc", "gauc"}
    assert keys == sorted(k for k in mirrored if k.startswith(f"{name}/eval/"))
    for key in keys:
        np.testing.assert_allclose(mirrored[key], one[key], rtol=1e-4, atol=1e-6, err_msg=key)
    assert 0.0 < float(one[f"{name}/eval/auc"]) < 1.0


def test_clipping_was_active_in_the_rows_run(runs):
    from tests._distribute_jobs import CLIP_NORM
    assert float(runs["one"]["din_repo_rows/first_gradient_norm"]) > 3 * CLIP_NORM


def test_multi_worker_two_local_workers_agree(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    outs = [str(tmp_path / f"worker{i}.npz") for i in range(2)]
    workers = [_start(["worker", outs[i]], env={"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)]
    _wait_all(workers, timeout=240)
    results = [dict(np.load(path)) for path in outs]
    count = sum(k.startswith("final_") for k in results[0])
    assert count > 0
    for result in results:
        assert int(result["replicas"]) == 2
        assert result["loss"].shape == (3,) and np.all(np.isfinite(result["loss"]))
    for i in range(count):
        # Initial values are broadcast from worker 0 and every update is all-reduced.
        np.testing.assert_array_equal(results[0][f"initial_{i}"], results[1][f"initial_{i}"])
        np.testing.assert_allclose(results[0][f"final_{i}"], results[1][f"final_{i}"], atol=1e-6)
    moved = max(np.max(np.abs(results[0][f"final_{i}"] - results[0][f"initial_{i}"]))
                for i in range(count))
    assert moved > 1e-3
    np.testing.assert_allclose(results[0]["loss"], results[1]["loss"], rtol=1e-6)
    assert np.all((results[0]["auc"] > 0) & (results[0]["auc"] < 1))  # compiled metric runs
    np.testing.assert_allclose(results[0]["auc"], results[1]["auc"], rtol=1e-6)


# -- make_strategy (in this process: no devices are reconfigured) ---------------

def test_make_strategy_default_and_one_device():
    assert make_strategy("default") is tf.distribute.get_strategy()
    one = make_strategy("one_device", ["/cpu:0"])
    assert isinstance(one, tf.distribute.OneDeviceStrategy)
    assert one.num_replicas_in_sync == 1
    # One object per arguments: a second strategy's collectives could collide.
    assert make_strategy("one_device", "/cpu:0") is one


def test_make_strategy_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"name='horovod'.*'default', 'one_device', "
                                         r"'mirrored', 'multi_worker', 'parameter_server'"):
        make_strategy("horovod")
    with pytest.raises(ValueError, match=r"devices=\['/cpu:0', '/cpu:1'\].*one_device.*"
                                         "exactly one"):
        make_strategy("one_device", ["/cpu:0", "/cpu:1"])
    with pytest.raises(ValueError, match=r"devices=\['/gpu:0'\].*multi_worker.*None"):
        make_strategy("multi_worker", ["/gpu:0"])
    with pytest.raises(ValueError, match=r"devices=\(\).*non-empty"):
        make_strategy("mirrored", [])
    with pytest.raises(ValueError, match=r"devices=\['/cpu:0'\].*parameter_server.*None"):
        make_strategy("parameter_server", ["/cpu:0"])
    with pytest.raises(ValueError, match=r"min_shard_bytes=1024 for name='mirrored'.*only "
                                         "'parameter_server'"):
        make_strategy("mirrored", min_shard_bytes=1024)
    for bad in (0, -5, 1.5, True, "1MB"):
        with pytest.raises(ValueError, match=r"min_shard_bytes=.*positive integer"):
            make_strategy("parameter_server", min_shard_bytes=bad)
    assert STRATEGY_NAMES == ("default", "one_device", "mirrored", "multi_worker",
                              "parameter_server")


def test_parameter_server_strategy_must_run_on_a_chief(monkeypatch):
    """Without a chief task in TF_CONFIG the error says what to run where
    (before any connection is attempted)."""
    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": {"worker": ["127.0.0.1:1"], "ps": ["127.0.0.1:2"]},
        "task": {"type": "worker", "index": 0}}))
    with pytest.raises(ValueError, match=r"runs on the chief.*task type 'worker'.*"
                                         r"\['ps', 'worker'\].*din_tf.cluster_task"):
        make_strategy("parameter_server")
