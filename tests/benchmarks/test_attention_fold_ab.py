"""benchmarks/attention_fold_ab.py end to end on a tiny run: both attention
forms are traced, timed and agree on the first training step's loss."""

import json
import subprocess
import sys


def test_both_forms_run_and_agree(tmp_path):
    out = tmp_path / "ab.json"
    cmd = [sys.executable, "-m", "benchmarks.attention_fold_ab", "--models=dien_repo/DIN",
           "--lengths=40", "--steps=2", "--warmup=1", "--batch_size=8", f"--output={out}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    [r] = json.loads(out.read_text())
    assert (r["model"], r["T"], r["batch_size"]) == ("dien_repo/DIN", 40, 8)
    assert set(r["median_step_s"]) == {"concatenated", "folded"}
    assert all(t > 0 for t in r["median_step_s"].values())
    losses = r["first_loss"]
    assert abs(losses["folded"] - losses["concatenated"]) < 1e-5 * abs(losses["concatenated"])
    assert "concatenated" in done.stdout and "ratio" in done.stdout
