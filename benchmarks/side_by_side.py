r"""The zoo against the original TF1 code, side by side: one command that
times both alternately, in several rounds, on the same shapes and batches,
and prints the ratio (zoo / original) per model, history length and zoo mode.

  python -m benchmarks.side_by_side --python=/tmp/origenv/bin/python \
      --dien_repo_dir=/tmp/orig/dien --din_repo_dir=/tmp/orig/din \
      --models=dien_repo/DIEN,dien_repo/DIN --lengths=10,30,100 \
      --zoo_modes=faithful+xla,fast+xla --rounds=3 \
      --output=benchmarks/results/side_by_side.json \
      --markdown=benchmarks/results/side_by_side.md

The originals run through `original_throughput.py` (your checkouts, the TF1
virtualenv of its docstring), the zoo through `train_throughput.py`, each in
fresh processes; in every round each model is timed original-then-zoo or
zoo-then-original (alternating by round), so the VM's drift over an hour
hits both sides alike. Ratios are of the medians over the rounds. Each
repo's own batch size (128 / 32) unless --batch_size is set. The machine's
own 2048^3 float32 matmul rate (`roofline.time_matmul`) is measured before
and after and printed beside the ratios. `--zoo_modes` takes
`train_throughput.py`'s modes (faithful / fast, +xla, +bf16); a DIN-repo
mode may add `+spe16` (16 steps per call, as `model.fit` runs them with
`trainer.steps_per_execution=16`); `--dien_zoo_modes` / `--din_zoo_modes`
set a repo's own list. `--render` re-renders the tables from --output's JSON
without measuring (docs/benchmarks.md pastes them).
"""

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

from absl import app, flags

from benchmarks import REPO, child_path
from benchmarks.side_by_side_tables import (
    markdown,
    split_steps_per_execution,
    summarize,
    targets_markdown,
)
from din_tf.experiments import atomic_files

FLAGS = flags.FLAGS


def _define_flags():
    # Only when run as a script (see benchmarks/__init__.py).
    flags.DEFINE_list("models", ["dien_repo/DIEN", "dien_repo/DIN", "din_repo/din"],
                      "Original model names.")
    flags.DEFINE_list("lengths", ["10", "30", "100"], "History lengths T.")
    flags.DEFINE_list("zoo_modes", ["faithful+xla", "fast+xla"], "The zoo's modes timed.")
    flags.DEFINE_list("dien_zoo_modes", None, "Modes for dien_repo/* (default --zoo_modes).")
    flags.DEFINE_list("din_zoo_modes", None, "Modes for din_repo/* (default --zoo_modes).")
    flags.DEFINE_integer("rounds", 3, "Interleaved rounds.", lower_bound=1)
    flags.DEFINE_integer("steps", 10, "Timed steps per run.")
    flags.DEFINE_integer("warmup", 3, "Untimed steps per run.")
    flags.DEFINE_integer("batch_size", 0, "Rows per step; 0: each repo's own (128 / 32).")
    flags.DEFINE_string("python", None, "Interpreter of the originals' TF1 virtualenv.")
    flags.DEFINE_string("dien_repo_dir", None, "Checkout of github.com/mouna99/dien.")
    flags.DEFINE_string("din_repo_dir", None,
                        "Checkout of github.com/zhougr1993/DeepInterestNetwork.")
    flags.DEFINE_string("output", "benchmarks/results/side_by_side.json", "JSON output.")
    flags.DEFINE_string("markdown", None, "Also write the tables as Markdown here.")
    flags.DEFINE_bool("render", False,
                      "Measure nothing: render --output's JSON as tables again.")


ORIGINAL_BATCH = {"dien_repo": 128, "din_repo": 32}


def _run_json(args, what):
    """Runs a benchmark child writing JSON to a temporary file; returns its records."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "out.json")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        done = subprocess.run(args + [f"--output={out}"], env=env, capture_output=True,
                              text=True, check=False, cwd=REPO)
        if done.returncode != 0 or not os.path.exists(out):
            raise RuntimeError(f"{what} failed (exit {done.returncode}):\n"
                               f"{done.stderr[-3000:]}")
        with open(out, encoding="utf-8") as f:
            return json.load(f)


def original_runs(name, lengths, batch):
    args = [sys.executable, "-m", "benchmarks.original_throughput", f"--models={name}",
            f"--lengths={','.join(map(str, lengths))}", f"--batch_size={batch}",
            f"--steps={FLAGS.steps}", f"--warmup={FLAGS.warmup}", f"--python={FLAGS.python}",
            f"--dien_repo_dir={child_path(FLAGS.dien_repo_dir)}",
            f"--din_repo_dir={child_path(FLAGS.din_repo_dir)}"]
    return _run_json(args, f"the original {name}")


def zoo_runs(name, lengths, batch, modes):
    records = []
    by_calls = {}  # +spe<N> runs need their own child (a process-wide flag)
    for mode in modes:
        base, calls = split_steps_per_execution(mode)
        by_calls.setdefault(calls, []).append((mode, base))
    for calls, pairs in by_calls.items():
        # Multi-step calls: at least 2 warm-up and 8 timed calls (with one
        # warm-up call and three timed ones the first calls' slowness, e.g.
        # the input pipeline filling, halved the DIN repo's T=10 figures).
        steps, warmup = FLAGS.steps, FLAGS.warmup
        if calls > 1:
            steps, warmup = max(steps, 8 * calls), max(warmup, 2 * calls)
        args = [sys.executable, "-m", "benchmarks.train_throughput", f"--models={name}",
                f"--lengths={','.join(map(str, lengths))}",
                f"--modes={','.join(base for _, base in pairs)}", f"--batch_size={batch}",
                f"--steps={steps}", f"--warmup={warmup}", f"--steps_per_execution={calls}"]
        names = dict((base, mode) for mode, base in pairs)
        for r in _run_json(args, f"the zoo's {name}"):
            r["arm"] = names[r["arm"]]
            records.append(r)
    return records


def matmul_rate():
    """GFLOP/s of a 2048^3 float32 product, measured in a fresh process."""
    code = ("from benchmarks import roofline; s = roofline.time_matmul(2048, 2048, 2048, 5); "
            "print(2 * 2048 ** 3 / s / 1e9)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return float(done.stdout.strip().splitlines()[-1])


def _modes_for(name):
    repo_modes = FLAGS.dien_zoo_modes if name.startswith("dien_repo/") else FLAGS.din_zoo_modes
    return repo_modes or FLAGS.zoo_modes


def _cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv):
    del argv
    if FLAGS.render:
        with open(FLAGS.output, encoding="utf-8") as f:
            render(json.load(f))
        return
    if not FLAGS.python:
        raise app.UsageError("--python: the interpreter of the originals' virtualenv is "
                             "required (see original_throughput.py's docstring).")
    for mode in FLAGS.zoo_modes + (FLAGS.dien_zoo_modes or []) + (FLAGS.din_zoo_modes or []):
        split_steps_per_execution(mode)
    lengths = [int(t) for t in FLAGS.lengths]
    started = datetime.datetime.now(datetime.timezone.utc)
    rates = [matmul_rate()]
    print(f"2048^3 float32 matmul: {rates[0]:.1f} GFLOP/s", flush=True)
    records = []
    for round_index in range(FLAGS.rounds):
        for name in FLAGS.models:
            batch = FLAGS.batch_size or ORIGINAL_BATCH[name.split("/")[0]]
            sides = [("original", lambda: original_runs(name, lengths, batch)),
                     ("zoo", lambda: zoo_runs(name, lengths, batch, _modes_for(name)))]
            if round_index % 2:
                sides.reverse()
            for side, run in sides:
                for r in run():
                    r["round"] = round_index
                    records.append(r)
                    label = "original" if side == "original" else f"zoo {r['arm']}"
                    print(f"round {round_index + 1} {name:30s} T={r['T']:<4} B={batch:<4} "
                          f"{label:28s} {r['examples_per_s']:9,.0f} ex/s", flush=True)
    rates.append(matmul_rate())
    result = {"started_utc": started.isoformat(), "cpu": _cpu_name(), "cores": os.cpu_count(),
              "matmul_2048_gflops": rates, "rounds": FLAGS.rounds, "steps": FLAGS.steps,
              "warmup": FLAGS.warmup, "summary": summarize(records), "runs": records}
    atomic_files.write_json(FLAGS.output, result)
    render(result)


def render(result):
    """Prints the tables of a run's JSON (and writes --markdown)."""
    summary = summarize(result["runs"])
    arms = list(dict.fromkeys(r["arm"] for r in result["runs"] if r.get("code") != "original"))
    started = datetime.datetime.fromisoformat(result["started_utc"])
    rates = result["matmul_2048_gflops"]
    header = (f"Measured {started:%Y-%m-%d %H:%M} UTC on {result['cpu']} "
              f"({result['cores']} cores), {result['rounds']} interleaved rounds; 2048³ float32 "
              f"matmul {rates[0]:.1f} GFLOP/s before, {rates[1]:.1f} after.")
    table = (markdown(summary, arms, header) + "\nThe fastest faithful mode per row, and "
             "fast + XLA:\n\n" + targets_markdown(summary))
    print("\n" + table, flush=True)
    if FLAGS.markdown:
        atomic_files.write_text(FLAGS.markdown, table)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
