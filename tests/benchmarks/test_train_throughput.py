"""benchmarks/train_throughput.py end to end on tiny runs (Books-size
vocabularies, a few steps): the JSON it writes and the report that renders
it, with two models in one process and mixed precision kept across the
fresh session each run starts with."""

import json
import subprocess
import sys

from benchmarks import report


def test_two_models_one_process_json_and_report(tmp_path):
    out = tmp_path / "train_throughput_tiny.json"
    cmd = [sys.executable, "-m", "benchmarks.train_throughput",
           "--models=dien_repo/DNN,din_repo/pnn", "--lengths=3", "--modes=fast", "--steps=2",
           "--warmup=1", "--batch_size=8", "--mixed_precision", f"--output={out}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    records = json.loads(out.read_text())
    assert [(r["model"], r["T"], r["mode"], r["batch_size"]) for r in records] == [
        ("dien_repo/DNN", 3, "fast", 8), ("din_repo/pnn", 3, "fast", 8)]
    for r in records:
        assert r["mixed_precision"] and r["examples_per_s"] > 0
        # The policy survives each run's fresh session (clear_session resets it):
        # the second model was built computing in float16 too.
        assert r["compute_dtype"] == "float16"
    table = report.training_tables(str(tmp_path))
    assert "| dien_repo/DNN | 3 | fast | no | 8 |" in table


def test_modes_with_options_set_xla_and_bfloat16_per_run(tmp_path):
    out = tmp_path / "modes.json"
    modes = ["fast+xla+bf16", "faithful"]
    cmd = [sys.executable, "-m", "benchmarks.train_throughput", "--models=dien_repo/DNN",
           "--lengths=3", f"--modes={','.join(modes)}", "--steps=2", "--warmup=1",
           "--batch_size=8", f"--output={out}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    records = json.loads(out.read_text())
    assert [r["arm"] for r in records] == modes
    assert [(r["mode"], r["jit_compile"], r["compute_dtype"]) for r in records] == [
        ("fast", True, "bfloat16"), ("faithful", False, "float32")]


def test_a_bad_mode_option_is_named_before_anything_runs(tmp_path):
    cmd = [sys.executable, "-m", "benchmarks.train_throughput", "--models=dien_repo/DNN",
           "--modes=fast+gpu", f"--output={tmp_path / 'never.json'}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "--modes: Invalid option 'gpu' in mode 'fast+gpu'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "never.json").exists()


# Run in a child: defining train_throughput's flags here would leave them in
# this test process's global FLAGS.
STEPS_PER_EXECUTION_CHILD = """
import json
import numpy as np
from absl import flags
from benchmarks import train_throughput as tt
tt.define_flags()
flags.FLAGS(["x", "--batch_size=4", "--steps=5", "--warmup=1", "--steps_per_execution=3"])
tt.fresh_session()
model, _ = tt.model_and_step("dien_repo/DNN", "fast")
rng = np.random.default_rng(0)
batches = [tt.random_batch(rng, 4, 3) for _ in range(4)]
record = tt._record(model, "dien_repo/DNN", 3, "fast",
                    tt._seconds_per_step_in_calls(model, batches))
print(json.dumps({"iterations": int(model.optimizer.iterations.numpy()), **record}))
"""


def test_steps_per_execution_times_calls_of_n_steps():
    done = subprocess.run([sys.executable, "-c", STEPS_PER_EXECUTION_CHILD],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    # 1 warm-up call + max(3, ceil(5 / 3)) timed calls, each of 3 steps.
    assert record["iterations"] == (1 + 3) * 3
    assert record["steps_per_execution"] == 3 and record["examples_per_s"] > 0
