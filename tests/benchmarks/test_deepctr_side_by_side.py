"""benchmarks/deepctr_side_by_side.py without DeepCTR (or network): the
table and ratios built from measurement records, and
the one-line exit-2 message when the DeepCTR venv is missing."""

import os
import subprocess
import sys

import pytest

from benchmarks import deepctr_side_by_side as ds


def _record(model, side, examples_per_s, round_=0):
    return {"model": model, "side": side, "round": round_, "examples_per_s": examples_per_s,
            "median_step_s": 128 / examples_per_s}


FAKE = [
    _record("dien_repo/DIN", "deepctr", 1000, 0), _record("dien_repo/DIN", "ours", 9000, 0),
    _record("dien_repo/DIEN", "deepctr", 500, 0), _record("dien_repo/DIEN", "ours", 1500, 0),
    _record("dien_repo/DIN", "ours", 11000, 1), _record("dien_repo/DIN", "deepctr", 1200, 1),
    _record("dien_repo/DIEN", "ours", 1000, 1), _record("dien_repo/DIEN", "deepctr", 400, 1),
    _record("dien_repo/DIN", "deepctr", 800, 2), _record("dien_repo/DIN", "ours", 10000, 2),
    _record("dien_repo/DIEN", "deepctr", 450, 2), _record("dien_repo/DIEN", "ours", 2000, 2),
]


def test_summary_takes_medians_and_ranges_over_rounds_and_the_ratio_of_medians():
    din, dien = ds.summarize(FAKE)
    assert din == {"model": "dien_repo/DIN",
                   "deepctr": {"median": 1000, "min": 800, "max": 1200, "n": 3},
                   "ours": {"median": 10000, "min": 9000, "max": 11000, "n": 3},
                   "ratio": 10.0}
    assert dien["model"] == "dien_repo/DIEN"
    assert (dien["deepctr"]["median"], dien["ours"]["median"]) == (450, 1500)
    assert dien["ratio"] == pytest.approx(1500 / 450)


def test_table_rows_and_a_model_measured_on_one_side_only():
    rows = ds.summarize(FAKE + [_record("dien_repo/DIEN-only-ours", "ours", 700)])
    lines = ds.format_table(rows).splitlines()
    assert lines[0].startswith("| model | DeepCTR ex/s")
    assert lines[2] == "| dien_repo/DIN | 1000 (800-1200) | 10000 (9000-11000) | 10.00x |"
    assert lines[3] == "| dien_repo/DIEN | 450 (400-500) | 1500 (1000-2000) | 3.33x |"
    assert lines[4] == "| dien_repo/DIEN-only-ours | - | 700 (700-700) | - |"
    assert rows[-1]["ratio"] is None


def _run(*args):
    cmd = [sys.executable, "-m", "benchmarks.deepctr_side_by_side", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_missing_venv_is_one_line_with_the_command_and_exit_code_2(tmp_path):
    venv = tmp_path / "no_such_venv"
    done = _run(f"--venv={venv}")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert f"no venv at {venv}" in line
    assert line.endswith(f"python -m benchmarks.deepctr_side_by_side --venv={venv} --setup")
    assert done.stdout == ""


def test_venv_without_deepctr_names_what_is_missing(tmp_path):
    # A "venv" whose python is this interpreter: it runs, but has no deepctr
    # (the project must not depend on it).
    (tmp_path / "bin").mkdir()
    os.symlink(sys.executable, tmp_path / "bin" / "python")
    done = _run(f"--venv={tmp_path}")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "lacks" in line and "deepctr" in line and "--setup" in line


def test_no_venv_flag_at_all():
    assert ds.venv_problem(None) == "no --venv given"
