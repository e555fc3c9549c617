"""benchmarks/serving.py on a tiny vocabulary with tiny request counts: DIEN
through the whole machinery (export, fresh serving processes with both
loaders, training-memory processes, JSON, printed lines), and its argument
errors. The XLA export itself is tested in tests/test_export.py. About a
minute: every measurement is a fresh TF process."""

import json
import math

import numpy as np
import pytest
from absl import app

from benchmarks import serving

TINY = dict(n_users=50, n_items=40, n_categories=8)
LENGTHS = [2, 5]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    lines = []
    results = serving.run_benchmark(
        ["dien_repo/DIEN"], LENGTHS, vocab=TINY, jit_compile=(False,),
        loaders=("saved_model", "session"), threads=(1,), requests=30, warmup=3, pool=4,
        batch_size=16, batch_calls=3, train_modes=("fast",), train_batch_size=8,
        train_length=5, train_steps=2, log=lines.append)
    path = tmp_path_factory.mktemp("serving") / "results" / "serving.json"
    serving.write_results(results, str(path))
    with open(path) as f:
        return {"results": results, "lines": lines, "json": json.load(f)}


def test_json_has_every_section_and_the_machine_state(run):
    written = run["json"]
    assert sorted(written) == ["meta", "serving", "training"]
    meta = written["meta"]
    assert meta["vocab"] == TINY and meta["weights"].startswith("untrained")
    for key in ("load_average_start", "load_average_end", "cpu_count", "tensorflow",
                "git_head", "din_tf_uncommitted"):
        assert key in meta
    assert len(meta["load_average_end"]) == 3


def test_serving_records_are_sane(run):
    records = run["json"]["serving"]
    assert [(r["loader"], r["T"]) for r in records] == [
        ("saved_model", 2), ("saved_model", 5), ("session", 2), ("session", 5)]
    for r in records:
        assert r["model"] == "dien_repo/DIEN" and r["export"] == "default"
        assert r["threads"] == 1 and r["jit_compile"] is False
        b1, batch = r["batch1"], r["batch"]
        assert 0 < b1["p50_ms"] <= b1["p99_ms"] and b1["mean_ms"] > 0
        assert b1["requests"] == 30 and b1["first_call_ms"] > 0
        assert batch["batch_size"] == 16 and batch["calls"] == 3
        assert batch["examples_per_s"] > 0
        assert math.isclose(batch["examples_per_s"], 16 / (batch["median_call_ms"] / 1000))
        # The serving process loaded the export without din_tf.
        assert r["din_tf_imported"] is False
        assert 0 < r["rss_after_import_mb"] <= r["peak_rss_mb"]
        assert 0 < r["rss_after_load_mb"] <= r["peak_rss_mb"]
        assert r["floor_p50_ms"] > 0
        assert isinstance(r["batch1_p50_ms_per_step"], float)
        # Both loaders serve the same export on the same seeded requests.
        assert r["max_abs_diff_vs_first_export"] <= 1e-6


def test_training_memory_records_are_sane(run):
    records = run["json"]["training"]
    assert [r["mode"] for r in records] == ["fast"]  # "faithful" only drops compile args
    for r in records:
        assert (r["batch_size"], r["T"], r["steps"]) == (8, 5, 2)
        assert 0 < r["rss_after_import_mb"] <= r["rss_after_build_mb"] <= r["peak_rss_mb"]
        assert r["median_step_s"] > 0 and np.isfinite(r["loss"])


def test_one_printed_line_per_measurement(run):
    lines = run["lines"]
    assert sum("exported in" in line for line in lines) == 1
    assert sum("batch-1 p50" in line and " T=" in line for line in lines) == 4
    assert sum("serving RSS" in line for line in lines) == 2
    assert sum(" train " in line for line in lines) == 1
    assert len(lines) == 8


def test_requests_follow_the_signature():
    rng = np.random.default_rng(0)
    names = ["category_id", "history_category_ids", "history_item_ids", "history_length",
             "item_id"]  # a DINRepoModel: no user_id
    arrays = serving._requests(rng, names, TINY, 3, 4)
    assert sorted(arrays) == names
    assert arrays["history_item_ids"].shape == (3, 4)
    assert arrays["history_length"].tolist() == [4, 4, 4]
    assert 1 <= arrays["history_item_ids"].min() and arrays["history_item_ids"].max() < 40
    assert all(a.dtype == np.int32 for a in arrays.values())
    with pytest.raises(ValueError, match="Unexpected serving input 'history_mask'"):
        serving._requests(rng, ["history_mask"], TINY, 1, 2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(models=["dien_repo/NOPE"]), r"--models entry 'dien_repo/NOPE'.*expected names"),
    (dict(lengths=[0]), r"--lengths entry 0.*ints >= 1"),
    (dict(loaders=["grpc"]), r"--loaders entry='grpc'.*\['saved_model', 'session'\]"),
    (dict(threads=[-1]), r"--threads entry -1.*>= 0"),
    (dict(jit_compile=["yes"]), r"--jit_compile entry 'yes'.*true or false"),
    (dict(train_modes=["turbo"]), r"--train_modes entry='turbo'.*\['faithful', 'fast'\]"),
])
def test_bad_arguments_are_named_before_any_work(kwargs, message):
    arguments = dict(models=["dien_repo/DIEN"], lengths=[2])
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        serving.run_benchmark(arguments.pop("models"), arguments.pop("lengths"), vocab=TINY,
                              log=pytest.fail, **arguments)


def test_flag_lists_are_parsed_with_named_errors():
    assert serving._int_list("threads", ["0", "1"], 0) == [0, 1]
    assert serving._bool_list("jit_compile", ["false", "True"]) == [False, True]
    with pytest.raises(app.UsageError, match=r"--lengths=10,x; expected integers >= 1"):
        serving._int_list("lengths", ["10", "x"], 1)
    with pytest.raises(app.UsageError, match=r"--jit_compile=maybe; expected true"):
        serving._bool_list("jit_compile", ["maybe"])
