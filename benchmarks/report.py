r"""Renders the benchmark JSON files as the markdown tables of
docs/benchmarks.md (so the docs hold exactly what the scripts measured).

  python -m benchmarks.report --results=benchmarks/results > /tmp/tables.md

Reads, when present: train_throughput*.json (benchmarks/train_throughput.py),
original_throughput*.json (benchmarks/original_throughput.py), serving.json
(benchmarks/serving.py), input_pipeline.json (benchmarks/input_pipeline.py)
and roofline.json (benchmarks/roofline.py). Ratios are to the original TF1
code on the same shapes and batch size: the mean of its runs in
original_throughput*.json (measured side by side on this machine) where
there are any, else the figures of
docs/original_code.md#throughput-of-the-original-code (`ORIGINAL`: the DIEN
repo's DIEN and DIN at B=128, the DIN repo's DIN at its B=32; marked †). On
mixed lengths,
to DeepCTR (DIEN ~750, DIN ~1,300 ex/s).
"""

import functools
import glob
import json
import os
import statistics

from absl import app, flags

# The original TF1 code's training throughput on this machine class, oneDNN
# on (docs/original_code.md#throughput-of-the-original-code; its DIN-repo row
# used Electronics vocabularies, not Books):
# {(model, batch size): {T: examples/s}}. Used where the original was not
# run side by side.
ORIGINAL = {
    ("dien_repo/DIEN", 128): {10: 1162.0, 30: 878.0, 100: 444.0},
    ("dien_repo/DIN", 128): {10: 1393.0, 30: 1360.0, 100: 1135.0},
    ("din_repo/din", 32): {10: 11123.0, 30: 5037.0, 100: 2064.0},
}
# DeepCTR 0.9.4 on lengths uniform in 1..100 (issue 6).
DEEPCTR_MIXED = {"dien_repo/DIEN": 750.0, "dien_repo/DIN": 1300.0}


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _load_optional(results_dir, name):
    """The JSON file `name` in `results_dir`, or None when it was not written."""
    path = os.path.join(results_dir, name)
    return _load(path) if os.path.exists(path) else None


def _fmt(value):
    return f"{value:,.0f}"


def _load_all(results_dir, pattern):
    records = []
    for path in sorted(glob.glob(os.path.join(results_dir, pattern))):
        records += _load(path)
    return records


def measured_originals(results_dir):
    """{(model, batch size, T): [examples/s of each run]} of the original code."""
    runs = {}
    for r in _load_all(results_dir, "original_throughput*.json"):
        runs.setdefault((r["model"], r["batch_size"], r["T"]), []).append(r["examples_per_s"])
    return runs


def original_table(originals):
    out = ["The original TF1 code on this machine (benchmarks/original_throughput.py):\n",
           "| model | B | T | runs | ex/s (mean; range) |", "| --- | --- | --- | --- | --- |"]
    for (model, batch, t), rates in sorted(originals.items()):
        spread = f"; {_fmt(min(rates))}–{_fmt(max(rates))}" if len(rates) > 1 else ""
        out.append(f"| {model} | {batch} | {t} | {len(rates)} | "
                   f"{_fmt(statistics.fmean(rates))}{spread} |")
    return out + [""]


def training_tables(results_dir):
    records = _load_all(results_dir, "train_throughput*.json")
    originals = measured_originals(results_dir)
    if not records and not originals:
        return ""
    out = original_table(originals) if originals else []
    ratio = functools.partial(_ratio, originals=originals)
    fixed = [r for r in records if isinstance(r["T"], int)]
    # One wide table per (batch size, XLA): models x (T, mode).
    plain = [r for r in fixed if not r["mixed_precision"]]
    for batch, jit in sorted({(r["batch_size"], r["jit_compile"]) for r in plain}):
        group = [r for r in plain if r["batch_size"] == batch and r["jit_compile"] == jit]
        out.append(f"B={batch}, {'XLA' if jit else 'no XLA'} (examples/s; "
                   "× the original code where it was measured; † the figure of "
                   "docs/original_code.md#throughput-of-the-original-code):\n")
        columns = sorted({(r["T"], r["mode"]) for r in group},
                         key=lambda c: (c[0], c[1] != "faithful"))
        out.append("| model | " + " | ".join(f"T={t} {mode}" for t, mode in columns) + " |")
        out.append("| --- |" + " --- |" * len(columns))
        for model in _models(group):
            cells = [_cell(group, model, t, mode, ratio) for t, mode in columns]
            out.append(f"| {model} | " + " | ".join(cells) + " |")
        out.append("")
    variants = [r for r in fixed if r["mixed_precision"]]
    if variants:
        out.append("Mixed precision (mixed_float16):\n")
        out.append("| model | T | mode | XLA | B | ex/s | ms/step | × original |")
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in sorted(variants, key=lambda r: (r["model"], r["jit_compile"], r["mode"])):
            out.append(f"| {r['model']} | {r['T']} | {r['mode']} | "
                       f"{'yes' if r['jit_compile'] else 'no'} | {r['batch_size']} | "
                       f"{_fmt(r['examples_per_s'])} | {r['median_step_s'] * 1000:.1f} | "
                       f"{ratio(r)} |")
        out.append("")
    mixed = [r for r in records if not isinstance(r["T"], int)]
    if mixed:
        out.append("| model | lengths | buckets | mode | XLA | mean padded T | ex/s | "
                   "× DeepCTR |")
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in mixed:
            buckets = ",".join(str(b) for b in r["buckets"]) if len(r["buckets"]) > 1 else "none"
            deepctr = DEEPCTR_MIXED.get(r["model"])
            vs = f"{r['examples_per_s'] / deepctr:.2f}×" if deepctr else ""
            out.append(f"| {r['model']} | {r['T']} | {buckets} | {r['mode']} | "
                       f"{'yes' if r['jit_compile'] else 'no'} | {r['mean_padded_length']:.1f} | "
                       f"{_fmt(r['examples_per_s'])} | {vs} |")
        out.append("")
    return "\n".join(out)


def _models(records):
    seen = []
    for r in records:
        if r["model"] not in seen:
            seen.append(r["model"])
    return seen


def _cell(records, model, t, mode, ratio):
    for r in records:
        if r["model"] == model and r["T"] == t and r["mode"] == mode:
            vs = ratio(r)
            return _fmt(r["examples_per_s"]) + (f" ({vs})" if vs else "")
    return "–"


def _ratio(r, originals):
    """The record's speed-up over the original code on the same shapes, or "":
    over the mean of the runs measured here, else over the figure of
    docs/original_code.md#throughput-of-the-original-code (†)."""
    runs = originals.get((r["model"], r["batch_size"], r["T"]))
    if runs:
        return f"{r['examples_per_s'] / statistics.fmean(runs):.2f}×"
    base = ORIGINAL.get((r["model"], r["batch_size"]), {}).get(r["T"])
    return f"{r['examples_per_s'] / base:.2f}×†" if base else ""


def serving_tables(results_dir):
    data = _load_optional(results_dir, "serving.json")
    if data is None:
        return ""
    out = ["| model | export | T | batch-1 p50 ms | batch-1 p99 ms | batch-1024 ex/s | "
           "RSS after load / peak MB |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in data.get("serving", []):
        if r.get("loader") != "saved_model" or r.get("threads") != 0:
            continue
        out.append(f"| {r['model']} | {'xla' if r['jit_compile'] else 'default'} | {r['T']} | "
                   f"{r['batch1']['p50_ms']:.2f} | {r['batch1']['p99_ms']:.2f} | "
                   f"{_fmt(r['batch']['examples_per_s'])} | "
                   f"{r.get('rss_after_load_mb', float('nan')):.0f} / "
                   f"{r.get('peak_rss_mb', float('nan')):.0f} |")
    training = data.get("training", [])
    if training:
        out += ["", "| model | mode | B | T | peak RSS MB | ms/step |",
                "| --- | --- | --- | --- | --- | --- |"]
        for r in training:
            out.append(f"| {r['model']} | {r['mode']} | {r['batch_size']} | {r['T']} | "
                       f"{r['peak_rss_mb']:.0f} | {r['median_step_s'] * 1000:.0f} |")
    meta = data.get("meta", {})
    out += ["", f"Measured {meta.get('started', '?')}, load average at start "
            f"{meta.get('load_average_start', '?')}."]
    return "\n".join(out)


def input_table(results_dir):
    data = _load_optional(results_dir, "input_pipeline.json")
    if data is None:
        return ""
    out = [f"{data['num_reviews']:,} generated reviews.", "",
           "| stage | rate |", "| --- | --- |"]
    for r in data["stages"]:
        rate = (f"{_fmt(r['rows_per_s'])} rows/s" if "rows_per_s" in r else
                f"{r['batches_per_s']:.1f} batches/s = {_fmt(r['examples_per_s'])} examples/s")
        out.append(f"| {r['stage']} | {rate} |")
    return "\n".join(out)


def roofline_table(results_dir):
    data = _load_optional(results_dir, "roofline.json")
    if data is None:
        return ""
    out = [f"B={data['batch_size']}, T={data['T']}; a 2048³ float32 matmul: "
           f"{data['peak_2048_gflops']:.1f} GFLOP/s.", "",
           "| model | part | matmul ms/step | GFLOP/s |", "| --- | --- | --- | --- |"]
    for model, r in data["models"].items():
        for part, v in r["parts"].items():
            out.append(f"| {model} | {part} | {v['seconds'] * 1e3:.1f} | {v['gflops']:.1f} |")
        out.append(f"| {model} | **all matmuls** | **{r['matmul_floor_step_s'] * 1e3:.1f}** | |")
    out += ["", "| model | MFLOP/example (here / as coded) | ceiling at the matmul floor | "
            "ceiling at the 2048³ rate |", "| --- | --- | --- | --- |"]
    for model, r in data["models"].items():
        out.append(f"| {model} | {r['flop_per_example'] / 1e6:.1f} / "
                   f"{r['flop_per_example_as_coded'] / 1e6:.1f} | "
                   f"{_fmt(r['ceiling_at_floor_examples_per_s'])} ex/s | "
                   f"{_fmt(r['ceiling_at_2048_rate_examples_per_s'])} ex/s |")
    return "\n".join(out)


def main(argv):
    del argv
    print("## Roofline\n")
    print(roofline_table(FLAGS.results))
    print("\n## Training throughput\n")
    print(training_tables(FLAGS.results))
    print("## Serving and memory\n")
    print(serving_tables(FLAGS.results))
    print("\n## Input pipeline\n")
    print(input_table(FLAGS.results))


if __name__ == "__main__":
    FLAGS = flags.FLAGS
    flags.DEFINE_string("results", "benchmarks/results", "Directory of benchmark JSON files.")
    app.run(main)
