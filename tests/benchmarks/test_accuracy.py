"""benchmarks/accuracy.py: a tiny sweep end to end (prepare, subprocess runs,
JSON, markdown, resume), its errors and the ordering checks."""

import json
import os

import numpy as np
import pytest

from benchmarks import accuracy

EXPERIMENTS = ["dien_repo/DNN"]  # one cheap model: each run is a TF process
OVERRIDE = "trainer.epochs=1,trainer.steps_per_epoch=2,data.train_batch_size=16"


def _write_five_core(directory, name="Tiny", n_users=60, n_items=40, seed=0):
    """A five-core-format dataset: one user per line, items in time order, and
    attributes (brand, category path) per item."""
    rng = np.random.default_rng(seed)
    with open(os.path.join(directory, f"{name}.txt"), "w") as f:
        for user in range(1, n_users + 1):
            items = rng.choice(np.arange(1, n_items + 1), rng.integers(5, 10), replace=False)
            f.write(" ".join(map(str, [user, *items])) + "\n")
    attributes = {str(i): [100 + i % 3, 200, 300 + i % 5] for i in range(1, n_items + 1)}
    with open(os.path.join(directory, f"{name}_item2attributes.json"), "w") as f:
        json.dump(attributes, f)


def _sweep(tmp_path, **kwargs):
    values = dict(data_dir=str(tmp_path / "data"), datasets=["Tiny"],
                  protocols=["dien", "din"], experiments=EXPERIMENTS, seeds=[1],
                  work_dir=str(tmp_path / "work"), params_override=OVERRIDE,
                  output=str(tmp_path / "results.json"), markdown=str(tmp_path / "results.md"),
                  command="python -m benchmarks.accuracy --datasets=Tiny")
    values.update(kwargs)
    return accuracy.Sweep(**values)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sweep")
    os.makedirs(tmp_path / "data")
    _write_five_core(str(tmp_path / "data"))
    results = accuracy.run_sweep(_sweep(tmp_path))
    return tmp_path, results


def test_sweep_writes_real_metrics_json_and_markdown(swept):
    tmp_path, results = swept
    saved = json.load(open(tmp_path / "results.json"))
    assert [(r["protocol"], r["experiment"], r["seed"], r["status"]) for r in saved["runs"]] == \
        [(p, e, 1, "ok") for p in ("dien", "din") for e in EXPERIMENTS]
    for record in saved["runs"]:
        for metric in ("auc", "gauc", "dinrepo_gauc"):
            assert 0.0 <= record["metrics"][metric] <= 1.0, (record["protocol"], metric)
        assert record["seconds"] > 0 and record["epochs"] == 1
        assert record["config_overrides"]["runtime"]["seed"] == 1
        assert record["config_overrides"]["trainer"]["steps_per_epoch"] == 2
        assert not os.path.exists(os.path.join(record["model_dir"], "export"))  # --noexport
    assert saved["missing"] == [] and saved["prepared"]["Tiny_din"]["train_rows"] > 0
    prepared = tmp_path / "work" / "prepared"
    assert sorted(os.listdir(prepared)) == ["Tiny_dien", "Tiny_din"]  # no tmp leftovers
    assert (tmp_path / "work" / ".gitignore").read_text().strip().endswith("*")
    markdown = (tmp_path / "results.md").read_text()
    assert "python -m benchmarks.accuracy --datasets=Tiny" in markdown
    assert "## Tiny, DIEN protocol" in markdown and "## Tiny, DIN protocol" in markdown
    assert markdown.count("| Embedding&MLP (BaseModel) | `dien_repo/DNN@") == 2
    assert "0.7686 (b)" in markdown and "same split" in markdown
    assert "(DIN repo models): not checked (no claimed pair has results" in markdown
    assert "## Missing runs" not in markdown


def test_resume_skips_finished_runs_and_lists_missing_ones(swept, monkeypatch):
    tmp_path, first = swept

    def no_subprocess(*args, **kwargs):
        raise AssertionError("a finished run was started again")

    monkeypatch.setattr(accuracy.subprocess, "run", no_subprocess)
    results = accuracy.run_sweep(_sweep(tmp_path))
    assert [r["metrics"] for r in results["runs"]] == [r["metrics"] for r in first["runs"]]
    assert [r["seconds"] for r in results["runs"]] == [r["seconds"] for r in first["runs"]]
    # Report-only with a run that never happened: rendered as missing, not run.
    report = accuracy.run_sweep(_sweep(tmp_path, seeds=[1, 2], report_only=True))
    assert len(report["runs"]) == 2 and len(report["missing"]) == 2
    markdown = (tmp_path / "results.md").read_text()
    assert "## Missing runs" in markdown and "`dien_repo/DNN` seed 2: not run" in markdown


def test_a_changed_config_is_not_reused(swept, monkeypatch):
    tmp_path, _ = swept
    monkeypatch.setattr(accuracy.subprocess, "run", None)  # must not be reached
    results = accuracy.run_sweep(_sweep(
        tmp_path, protocols=["din"], params_override=OVERRIDE + ",data.maxlen=5",
        output="", markdown=""))
    assert results["runs"][0]["status"] == "failed"
    assert "different config (changed: data.maxlen)" in results["runs"][0]["error"]
    # Report-only renders the runs as they were made, with their own config.
    report = accuracy.run_sweep(_sweep(
        tmp_path, protocols=["din"], params_override="trainer.epochs=7", report_only=True,
        output="", markdown=""))
    assert report["runs"][0]["status"] == "ok" and report["runs"][0]["epochs"] == 1
    assert report["runs"][0]["sweep_command"] == "python -m benchmarks.accuracy --datasets=Tiny"


def test_failed_run_is_recorded_and_the_sweep_continues(tmp_path, monkeypatch):
    os.makedirs(tmp_path / "data")
    _write_five_core(str(tmp_path / "data"))

    class Failed:
        returncode = 1

    def fake_run(command, stdout, **kwargs):
        stdout.write("Traceback ...\nValueError: boom\n")
        return Failed()

    monkeypatch.setattr(accuracy.subprocess, "run", fake_run)
    results = accuracy.run_sweep(_sweep(tmp_path))
    assert [r["status"] for r in results["runs"]] == ["failed"] * 2
    assert "ValueError: boom" in results["runs"][1]["error"]
    assert "failed (ValueError: boom" in (tmp_path / "results.md").read_text()


def test_bad_flags_give_clear_errors(tmp_path):
    with pytest.raises(accuracy.SweepError, match=r"--data_dir '.*nowhere' does not exist.*"
                                                  r"research-only"):
        accuracy.run_sweep(_sweep(tmp_path, data_dir=str(tmp_path / "nowhere")))
    os.makedirs(tmp_path / "data")
    with pytest.raises(accuracy.SweepError, match=r"--datasets entry 'Tiny'.*not found"):
        accuracy.run_sweep(_sweep(tmp_path))
    _write_five_core(str(tmp_path / "data"))
    with pytest.raises(accuracy.SweepError, match=r"without the '@protocol' suffix"):
        accuracy.run_sweep(_sweep(tmp_path, experiments=["dien_repo/DNN@dien"]))
    with pytest.raises(accuracy.SweepError, match=r"'DIEN' is not an experiment"):
        accuracy.run_sweep(_sweep(tmp_path, experiments=["DIEN"]))
    with pytest.raises(accuracy.SweepError, match=r"sets \['runtime.seed'\].*--seeds"):
        accuracy.run_sweep(_sweep(tmp_path, params_override="runtime.seed=4"))
    with pytest.raises(accuracy.SweepError, match=r"Unknown config key\(s\) \['trainer.epoch'\]"):
        accuracy.run_sweep(_sweep(tmp_path, params_override="trainer.epoch=1"))


def test_ordering_checks_on_hand_made_numbers():
    def entry(mean, std):
        return {"auc": {"mean": mean, "std": std, "n": 3 if std is not None else 1}}

    summary = {"a": entry(0.70, 0.002), "b": entry(0.72, 0.003), "c": entry(0.719, 0.003),
               "d": entry(0.719, 0.001), "e": entry(0.75, None)}
    checks = accuracy.ordering_checks(summary, "auc", [
        ("a", "b", True), ("b", "c", True), ("c", "d", False), ("d", "e", True),
        ("a", "zz", True)])
    assert [c["holds"] for c in checks] == [True, False, True, True, None]
    assert checks[0]["diff"] == pytest.approx(0.02) and checks[0]["noise"] == 0.003
    assert checks[0]["exceeds_noise"] and not checks[1]["exceeds_noise"]
    assert checks[3]["noise"] is None and checks[4]["missing"] == ["zz"]
    verdicts = [accuracy._verdict(c) for c in checks]
    assert verdicts[0] == "holds (|Δ| > seed std)"
    assert verdicts[1].startswith("**does not hold** (|Δ| ≤ seed std")
    assert "one seed" in verdicts[3] and verdicts[4].startswith("not checked")


def test_markdown_renders_only_finished_rows_with_ordering_verdicts():
    def record(experiment, seed, gauc):
        return {"dataset": "Beauty", "protocol": "din", "experiment": experiment, "seed": seed,
                "status": "ok", "epochs": 50, "steps_per_epoch": None,
                "metrics": {"auc": gauc, "gauc": gauc, "dinrepo_gauc": gauc}}

    runs = [record("din_repo/base", s, 0.80 + 0.001 * s) for s in (1, 2, 3)]
    runs += [record("din_repo/pnn", s, 0.85 + 0.001 * s) for s in (1, 2, 3)]
    runs += [record("din_repo/deepfm", s, 0.70) for s in (1, 2)]
    results = {"command": "python -m benchmarks.accuracy --datasets=Beauty", "date": "2024-01-02",
               "prepared": {}, "runs": runs,
               "missing": [{"dataset": "Beauty", "protocol": "din", "experiment": "din_repo/din",
                            "seed": 1}]}
    markdown = accuracy.render_markdown(results, accuracy.default_experiments())
    assert "Generated 2024-01-02" in markdown
    assert "| Embedding&MLP (base) | `din_repo/base@din` | 0.8020 ± 0.0010 |" in markdown
    assert "| 3 | 50 | 0.8624 (a) |" in markdown
    assert "| DeepFM | `din_repo/deepfm@din` | 0.7000 ± 0.0000 |" in markdown
    assert "`din_repo/din@din`" not in markdown.split("## Ordering checks")[0]
    assert "| Embedding&MLP (base) < PNN | +0.0500 | 0.0010 | holds (|Δ| > seed std) |" \
        in markdown
    assert "| Embedding&MLP (base) < DeepFM | -0.1020 | 0.0010 | **does not hold** (|Δ| > " \
        in markdown
    assert "- Beauty din `din_repo/din` seed 1: not run" in markdown


def test_report_only_without_runs_rerenders_the_saved_json(swept, tmp_path):
    source, first = swept
    fresh = tmp_path / "fresh_work"
    output = tmp_path / "copy.json"
    output.write_text((source / "results.json").read_text())
    results = accuracy.run_sweep(_sweep(source, work_dir=str(fresh), report_only=True,
                                        output=str(output), markdown=str(tmp_path / "r.md")))
    assert [r["metrics"] for r in results["runs"]] == [r["metrics"] for r in first["runs"]]
    assert not fresh.exists() and "## Tiny, DIN protocol" in (tmp_path / "r.md").read_text()
    with pytest.raises(accuracy.SweepError, match=r"--report_only: nothing to report"):
        accuracy.run_sweep(_sweep(source, work_dir=str(fresh), report_only=True,
                                  output=str(tmp_path / "none.json")))
