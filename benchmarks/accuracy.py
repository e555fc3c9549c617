r"""The papers' result tables reproduced on real data: every model of both
papers, on the Amazon 2014 5-core Beauty and Sports_and_Outdoors datasets
(research-only, ../shared/data; never committed), with both data protocols and
several seeds. Run from the repository root:

  python -m benchmarks.accuracy \
      --datasets=Beauty,Sports_and_Outdoors --protocols=dien,din --seeds=1,2,3 \
      --work_dir=benchmarks/results/accuracy \
      --output=benchmarks/results/accuracy.json --markdown=docs/results.md

`--experiments` defaults to every model of both papers (the 15 original models
and paper/AIGRU, paper/AGRU, paper/AUGRU, paper/DIEN); the `@dien` / `@din`
suffix is added per protocol. `--params_override` (e.g. `trainer.epochs=1`)
applies to every run. `--report_only` re-renders the JSON and markdown from the
runs already in `--work_dir` without training, whatever overrides they were run
with (the tables show each run's own epochs), so families can be swept
separately, e.g. the DIN repo's 50 epochs shortened with
`--experiments=din_repo/base,... --params_override=trainer.epochs=5`, and then
reported together with one `--report_only` call listing every experiment.

Each (dataset, protocol) is prepared once into `<work_dir>/prepared/` with the
protocol's fixed split seed (`data.prepare_seed` default: DIN 1234, DIEN 0), so
every seed sees the same split; a seed sets `runtime.seed` only (model init,
data order, negative sampling). Each (dataset, protocol, experiment, seed) then
runs `python -m din_tf.experiments.run --noexport` in its own process (no memory or
graph state carried between runs) in `<work_dir>/runs/...`, its output going
to `log.txt` there. A run whose directory already has `eval.json` is skipped,
so an interrupted sweep continues where it stopped; a failed run is recorded
with the tail of its log and the sweep goes on (exit status 1 at the end).
Relative paths in the flags are taken from the repository root. `<work_dir>`
gets a `.gitignore` of `*`: it holds data derived from the research-only files.
"""

import dataclasses
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

from absl import app, flags

from benchmarks import REPO

FLAGS = flags.FLAGS

DEFAULT_DATA_DIR = os.path.join("..", "shared", "data", "amazon-2014-5core-beauty-sports")
PAPER_VARIANTS = ("paper/AIGRU", "paper/AGRU", "paper/AUGRU", "paper/DIEN")
METRICS = (("auc", "AUC"), ("gauc", "GAUC"), ("dinrepo_gauc", "DIN-repo GAUC"))
# Config keys the sweep itself sets; overriding them would break the protocol
# (one fixed split per dataset) or the seed bookkeeping.
CONTROLLED_KEYS = ("model.name", "data.protocol", "data.processed_dir", "data.reviews",
                   "data.meta", "data.prepare_seed", "runtime.seed")

# Original name -> the name the papers give the model.
PAPER_NAMES = {
    "dien_repo/DNN": "Embedding&MLP (BaseModel)",
    "dien_repo/PNN": "PNN",
    "dien_repo/Wide": "Wide&Deep",
    "dien_repo/DIN": "DIN",
    "dien_repo/DIN-V2-gru-att-gru": "AIGRU",
    "dien_repo/DIN-V2-gru-gru-att": "Two-layer GRU attention",
    "dien_repo/DIN-V2-gru-qa-attGru": "AGRU",
    "dien_repo/DIN-V2-gru-vec-attGru": "AUGRU",
    "dien_repo/DIEN": "DIEN",
    "din_repo/base": "Embedding&MLP (base)",
    "din_repo/pnn": "PNN",
    "din_repo/deepfm": "DeepFM",
    "din_repo/wide_deep": "Wide&Deep",
    "din_repo/din": "DIN",
    "din_repo/din_dice": "DIN + Dice",
    "paper/AIGRU": "AIGRU (paper preset)",
    "paper/AGRU": "AGRU (paper preset)",
    "paper/AUGRU": "AUGRU (paper preset)",
    "paper/DIEN": "DIEN (paper preset)",
}

# Published numbers, on other datasets than ours: source key -> (description,
# metric, {experiment: value}).
PUBLISHED = {
    "a": ("DIN repo README, Amazon Electronics, corrected GAUC (their `dinrepo_gauc`)",
          "dinrepo_gauc",
          {"din_repo/base": 0.8624, "din_repo/pnn": 0.8679, "din_repo/deepfm": 0.8683,
           "din_repo/din": 0.8698, "din_repo/din_dice": 0.8711}),
    "b": ("DIEN paper Table 2, Amazon Books, AUC", "auc",
          {"dien_repo/DNN": 0.7686, "dien_repo/Wide": 0.7735, "dien_repo/PNN": 0.7799,
           "dien_repo/DIN": 0.7880, "dien_repo/DIN-V2-gru-gru-att": 0.7890,
           "dien_repo/DIEN": 0.8453, "paper/DIEN": 0.8453}),
}

# The papers' orderings: (title, metric, [(lower, upper, strict), ...]).
ORDERINGS = (
    ("DIN paper: Embedding&MLP < PNN, DeepFM < DIN < DIN+Dice (DIN repo models)", "gauc", [
        ("din_repo/base", "din_repo/pnn", True), ("din_repo/base", "din_repo/deepfm", True),
        ("din_repo/pnn", "din_repo/din", True), ("din_repo/deepfm", "din_repo/din", True),
        ("din_repo/din", "din_repo/din_dice", True)]),
    ("DIEN paper: DIN < AIGRU <= AGRU < AUGRU < DIEN (DIEN repo ablations)", "auc", [
        ("dien_repo/DIN", "dien_repo/DIN-V2-gru-att-gru", True),
        ("dien_repo/DIN-V2-gru-att-gru", "dien_repo/DIN-V2-gru-qa-attGru", False),
        ("dien_repo/DIN-V2-gru-qa-attGru", "dien_repo/DIN-V2-gru-vec-attGru", True),
        ("dien_repo/DIN-V2-gru-vec-attGru", "dien_repo/DIEN", True)]),
    ("DIEN paper: DIN < AIGRU <= AGRU < AUGRU < DIEN (paper presets)", "auc", [
        ("dien_repo/DIN", "paper/AIGRU", True), ("paper/AIGRU", "paper/AGRU", False),
        ("paper/AGRU", "paper/AUGRU", True), ("paper/AUGRU", "paper/DIEN", True)]),
)


class SweepError(Exception):
    """A sweep that cannot start; the message names the flag and what it expects."""


@dataclasses.dataclass
class Sweep:
    data_dir: str
    datasets: list
    protocols: list
    experiments: list
    seeds: list
    work_dir: str
    params_override: str = ""
    output: str = ""
    markdown: str = ""
    report_only: bool = False
    command: str = ""   # the command line quoted in the markdown


def default_experiments():
    from din_tf.models import ORIGINAL_MODELS
    return list(ORIGINAL_MODELS) + list(PAPER_VARIANTS)


def _repo_path(path):
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(REPO, path))


def _data_files(data_dir, dataset):
    return (os.path.join(data_dir, f"{dataset}.txt"),
            os.path.join(data_dir, f"{dataset}_item2attributes.json"))


def _flatten(values, prefix=""):
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and key != "options":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _merge(base, extra):
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def validate(sweep):
    """Checks every flag before anything runs; returns the parsed overrides."""
    from din_tf.experiments import config as C
    from din_tf.experiments import registry
    for name, values in (("--datasets", sweep.datasets), ("--protocols", sweep.protocols),
                         ("--experiments", sweep.experiments), ("--seeds", sweep.seeds)):
        if not values:
            raise SweepError(f"{name} is empty; expected at least one value.")
    bad = [p for p in sweep.protocols if p not in registry.PROTOCOLS]
    if bad:
        raise SweepError(f"--protocols has {bad}; expected values among "
                         f"{list(registry.PROTOCOLS)}.")
    for name in sweep.experiments:
        if "@" in name:
            raise SweepError(f"--experiments entry {name!r}: give the name without the "
                             "'@protocol' suffix (the sweep adds it per --protocols).")
        for protocol in sweep.protocols:
            if f"{name}@{protocol}" not in registry.EXPERIMENTS:
                raise SweepError(f"--experiments entry {name!r} is not an experiment "
                                 f"({name}@{protocol} is unknown); expected one of "
                                 f"{default_experiments()}.")
    if not sweep.report_only:
        if not os.path.isdir(sweep.data_dir):
            raise SweepError(
                f"--data_dir {sweep.data_dir!r} does not exist. It must hold the research-only "
                "Amazon 2014 5-core files <dataset>.txt and <dataset>_item2attributes.json "
                f"(default: {DEFAULT_DATA_DIR}, relative to the repository root; the data is "
                "never committed).")
        for dataset in sweep.datasets:
            missing = [p for p in _data_files(sweep.data_dir, dataset) if not os.path.isfile(p)]
            if missing:
                raise SweepError(f"--datasets entry {dataset!r}: {missing} not found in "
                                 f"--data_dir {sweep.data_dir!r}.")
    try:
        overrides = C.parse_overrides(sweep.params_override)
    except ValueError as e:
        raise SweepError(str(e)) from None
    controlled = sorted(k for k in _flatten(overrides)
                        if any(k == c or k.startswith(c + ".") for c in CONTROLLED_KEYS))
    if controlled:
        raise SweepError(f"--params_override sets {controlled}, which the sweep controls "
                         "(use --experiments, --protocols and --seeds; the split is fixed per "
                         "dataset and protocol).")
    for name in sweep.experiments:  # unknown keys fail here, not after hours of runs
        try:
            C.from_dict(overrides, registry.get_experiment(f"{name}@{sweep.protocols[0]}"))
        except ValueError as e:
            raise SweepError(f"--params_override: {e}") from None
    return overrides


# --- Preparation ------------------------------------------------------------------------

def _count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def prepared_dir(work_dir, dataset, protocol):
    return os.path.join(work_dir, "prepared", f"{dataset}_{protocol}")


def prepare(sweep, dataset, protocol):
    """The protocol's files for one dataset, built once (tmp dir, then rename)."""
    from din_tf.data import prepare as prep
    final = prepared_dir(sweep.work_dir, dataset, protocol)
    if os.path.isfile(os.path.join(final, "sweep_prepared.json")):
        return final
    tmp = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    txt, attributes = _data_files(sweep.data_dir, dataset)
    print(f"preparing {dataset} with the {protocol} protocol -> {final}", flush=True)
    counts = prep.run(protocol, tmp, seed=None, five_core_path=txt, attributes=attributes)
    if protocol == "dien":
        train = _count_lines(os.path.join(tmp, "local_train_splitByUser"))
        test = _count_lines(os.path.join(tmp, "local_test_splitByUser"))
    else:
        train = _count_lines(os.path.join(tmp, "train_set.csv"))
        test = 2 * _count_lines(os.path.join(tmp, "test_set.csv"))  # (pos, neg) per line
    summary = {"dataset": dataset, "protocol": protocol, "train_rows": train, "test_rows": test,
               "counts": counts, "prepare_seed": 0 if protocol == "dien" else 1234,
               "sources": [txt, attributes]}
    with open(os.path.join(tmp, "sweep_prepared.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    if os.path.isdir(final):  # a leftover without the summary: an older, partial attempt
        shutil.rmtree(final)
    os.rename(tmp, final)
    return final


def _prepared_summary(work_dir, dataset, protocol):
    path = os.path.join(prepared_dir(work_dir, dataset, protocol), "sweep_prepared.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return None


# --- Runs -------------------------------------------------------------------------------

def run_dir(work_dir, dataset, protocol, experiment, seed):
    return os.path.join(work_dir, "runs", f"{dataset}_{protocol}",
                        experiment.replace("/", "_"), f"seed_{seed}")


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_json(path, value):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _tail(path, lines=30):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _resolved(experiment, protocol, overrides):
    from din_tf.experiments import config as C
    from din_tf.experiments import registry
    return C.from_dict(overrides, registry.get_experiment(f"{experiment}@{protocol}"))


def run_one(sweep, overrides, dataset, protocol, experiment, seed):
    """One run's record: loaded when its directory already has results (resume),
    else from a fresh `din_tf.experiments.run` subprocess; None in report-only mode
    when the run has not happened."""
    from din_tf.experiments import config as C
    model_dir = run_dir(sweep.work_dir, dataset, protocol, experiment, seed)
    run_overrides = _merge(overrides, {
        "data": {"processed_dir": prepared_dir(sweep.work_dir, dataset, protocol)},
        "runtime": {"seed": seed}})
    cfg = _resolved(experiment, protocol, run_overrides)
    record = {"dataset": dataset, "protocol": protocol, "experiment": experiment, "seed": seed,
              "paper_name": PAPER_NAMES.get(experiment, experiment),
              "epochs": cfg.trainer.epochs, "steps_per_epoch": cfg.trainer.steps_per_epoch,
              "train_batch_size": cfg.data.train_batch_size,
              "config_overrides": run_overrides, "model_dir": model_dir,
              "metrics": None, "seconds": None, "error": None}
    record_path = os.path.join(model_dir, "sweep_record.json")
    eval_path = os.path.join(model_dir, "eval.json")
    if os.path.isfile(eval_path):
        config_path = os.path.join(model_dir, "config.json")
        stored = _read_json(config_path) if os.path.isfile(config_path) else cfg.as_dict()
        changed = [k for k in C.differences(stored, cfg.as_dict()) if k != "data.processed_dir"]
        if changed and not sweep.report_only:
            return {**record, "status": "failed", "error": (
                f"{model_dir} holds a run with a different config (changed: "
                f"{', '.join(changed)}); delete it or use another --work_dir.")}
        # Report-only renders what was run (e.g. families swept with different
        # --params_override), so its facts come from the run's own config.
        previous = _read_json(record_path) if os.path.isfile(record_path) else {}
        return {**record, **{k: previous[k] for k in ("config_overrides", "sweep_command",
                                                      "command") if k in previous},
                "epochs": stored["trainer"]["epochs"],
                "steps_per_epoch": stored["trainer"]["steps_per_epoch"],
                "train_batch_size": stored["data"]["train_batch_size"],
                "status": "ok", "metrics": _read_json(eval_path),
                "seconds": previous.get("seconds"), "finished": previous.get("finished")}
    if sweep.report_only:
        if os.path.isfile(record_path):
            return _read_json(record_path)  # a recorded failure
        return None
    os.makedirs(model_dir, exist_ok=True)
    command = [sys.executable, "-m", "din_tf.experiments.run", f"--experiment={experiment}@{protocol}",
               f"--model_dir={model_dir}", f"--params_override={json.dumps(run_overrides)}",
               "--noexport"]
    env = dict(os.environ)  # started in REPO, so `-m` runs the checkout's din_tf
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log_path = os.path.join(model_dir, "log.txt")
    start = time.perf_counter()
    # Appended: a run resumed after a failure keeps the earlier attempts' logs.
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"=== {datetime.datetime.now().isoformat(timespec='seconds')} "
                  f"{shlex.join(command)}\n")
        log.flush()
        proc = subprocess.run(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    record["seconds"] = round(time.perf_counter() - start, 1)  # of the last attempt
    record["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    record["command"] = shlex.join(command)
    record["sweep_command"] = sweep.command
    if proc.returncode == 0 and os.path.isfile(eval_path):
        record.update(status="ok", metrics=_read_json(eval_path))
    else:
        record.update(status="failed", error=f"exit status {proc.returncode}; end of {log_path}:"
                                             f"\n{_tail(log_path)}")
    _write_json(record_path, record)
    return record


def planned_runs(sweep):
    """(dataset, protocol, experiment, seed) in run order: seeds outside
    experiments, so an interrupted sweep already has one seed of every model."""
    return [(d, p, e, s) for d in sweep.datasets for p in sweep.protocols
            for s in sweep.seeds for e in sweep.experiments]


def run_sweep(sweep):
    """Runs (or, with report_only, collects) every planned run and writes the JSON
    and markdown after each one. Returns the results dict."""
    overrides = validate(sweep)
    plan = planned_runs(sweep)
    fallback = None
    if sweep.report_only and not os.path.isdir(os.path.join(sweep.work_dir, "runs")):
        # No run directories (e.g. a fresh checkout): re-render the saved JSON.
        if not (sweep.output and os.path.isfile(sweep.output)):
            raise SweepError(f"--report_only: nothing to report; neither {sweep.work_dir}/runs "
                             f"(--work_dir) nor {sweep.output!r} (--output) exists.")
        fallback = _read_json(sweep.output)
    if not sweep.report_only:
        os.makedirs(sweep.work_dir, exist_ok=True)
        ignore = os.path.join(sweep.work_dir, ".gitignore")
        if not os.path.exists(ignore):
            with open(ignore, "w", encoding="utf-8") as f:
                f.write("# Derived from research-only data: never commit.\n*\n")
        for dataset in sweep.datasets:
            for protocol in sweep.protocols:
                prepare(sweep, dataset, protocol)
    results = {"command": sweep.command, "date": datetime.date.today().isoformat(),
               "params_override": sweep.params_override, "prepared": {}, "runs": [],
               "missing": []}
    for dataset in sweep.datasets:
        for protocol in sweep.protocols:
            summary = (fallback or {}).get("prepared", {}).get(f"{dataset}_{protocol}") or \
                _prepared_summary(sweep.work_dir, dataset, protocol)
            if summary:
                results["prepared"][f"{dataset}_{protocol}"] = summary
    saved = {(r["dataset"], r["protocol"], r["experiment"], r["seed"]): r
             for r in (fallback or {}).get("runs", [])}
    for index, key in enumerate(plan, 1):
        if fallback is not None:
            record = saved.get(key)
        else:
            record = run_one(sweep, overrides, *key)
        if record is None:
            results["missing"].append(dict(zip(("dataset", "protocol", "experiment", "seed"),
                                               key)))
            continue
        results["runs"].append(record)
        print(f"[{index}/{len(plan)}] {_progress_line(record)}", flush=True)
        if not sweep.report_only:
            _write_outputs(sweep, results, plan[index:])
    _write_outputs(sweep, results, [])
    return results


def _progress_line(record):
    head = (f"{record['dataset']} {record['protocol']} {record['experiment']} "
            f"seed={record['seed']}: ")
    if record["status"] != "ok":
        last = (record["error"] or "").strip().splitlines() or ["no log"]
        return head + "FAILED: " + last[-1][:200]
    m = record["metrics"]
    took = f" ({record['seconds']:.0f} s)" if record.get("seconds") is not None else ""
    return head + ", ".join(f"{k}={m[k]:.4f}" for k, _ in METRICS if k in m) + took


def _write_outputs(sweep, results, pending):
    """Writes the JSON and markdown; `pending` runs count as missing for now."""
    current = dict(results, missing=results["missing"] + [
        dict(zip(("dataset", "protocol", "experiment", "seed"), k)) for k in pending])
    if sweep.output:
        _write_json(sweep.output, current)
    if sweep.markdown:
        os.makedirs(os.path.dirname(sweep.markdown) or ".", exist_ok=True)
        with open(sweep.markdown, "w", encoding="utf-8") as f:
            f.write(render_markdown(current, sweep.experiments))


# --- Summaries, ordering checks, markdown ----------------------------------------------

def _stats(values):
    n = len(values)
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else None
    return {"mean": mean, "std": std, "n": n}


def summarize(records):
    """{(dataset, protocol): {experiment: {metric: {mean, std, n}, "seeds": [...],
    "epochs": [...]}}} over the successful runs."""
    grouped = {}
    for r in records:
        if r.get("status") != "ok":
            continue
        key = (r["dataset"], r["protocol"])
        grouped.setdefault(key, {}).setdefault(r["experiment"], []).append(r)
    out = {}
    for key, by_experiment in grouped.items():
        out[key] = {}
        for experiment, runs in by_experiment.items():
            entry = {"seeds": sorted(r["seed"] for r in runs),
                     "epochs": sorted({_epochs_text(r) for r in runs})}
            for metric, _ in METRICS:
                values = [r["metrics"][metric] for r in runs if metric in r["metrics"]]
                if values:
                    entry[metric] = _stats(values)
            out[key][experiment] = entry
    return out


def _epochs_text(record):
    if record.get("steps_per_epoch"):
        return f"{record['epochs']} × {record['steps_per_epoch']} steps"
    return str(record["epochs"])


def ordering_checks(summary, metric, pairs):
    """One verdict per claimed pair `lower < upper` (`<=` when not strict) on
    `summary` ({experiment: {metric: {mean, std, n}}}): the mean difference
    upper - lower, the seed noise (the larger of the two seed stds; None with a
    single seed) and whether the difference exceeds it."""
    checks = []
    for lower, upper, strict in pairs:
        check = {"lower": lower, "upper": upper, "strict": strict, "metric": metric,
                 "diff": None, "noise": None, "holds": None, "exceeds_noise": None,
                 "missing": [m for m in (lower, upper) if metric not in summary.get(m, {})]}
        if not check["missing"]:
            a, b = summary[lower][metric], summary[upper][metric]
            diff = b["mean"] - a["mean"]
            check["diff"] = diff
            check["holds"] = diff > 0 if strict else diff >= 0
            if a["std"] is not None and b["std"] is not None:
                check["noise"] = max(a["std"], b["std"])
                check["exceeds_noise"] = abs(diff) > check["noise"]
        checks.append(check)
    return checks


def _verdict(check):
    if check["missing"]:
        return "not checked (no results for " + ", ".join(check["missing"]) + ")"
    text = "holds" if check["holds"] else "**does not hold**"
    if check["exceeds_noise"] is None:
        return text + " (one seed: no std to compare with)"
    if check["exceeds_noise"]:
        return text + " (|Δ| > seed std)"
    return text + " (|Δ| ≤ seed std: within seed noise)"


def _fmt(entry):
    if entry is None:
        return "—"
    if entry["std"] is None:
        return f"{entry['mean']:.4f}"
    return f"{entry['mean']:.4f} ± {entry['std']:.4f}"


def _published(experiment):
    for mark, (_, metric, values) in PUBLISHED.items():
        if experiment in values:
            return f"{values[experiment]:.4f} ({mark})"
    return ""


def render_markdown(results, experiments_order):
    summary = summarize(results["runs"])
    sections = sorted({(r["dataset"], r["protocol"]) for r in results["runs"]} |
                      {(m["dataset"], m["protocol"]) for m in results["missing"]})
    order = {e: i for i, e in enumerate(experiments_order)}
    lines = [
        "# Accuracy of both papers' models on Amazon 2014 5-core data",
        "",
        f"Generated {results['date']} by (from the repository root):",
        "",
        "```",
        results["command"] or "python -m benchmarks.accuracy",
        "```",
        "",
    ]
    sources = sorted({r["sweep_command"] for r in results["runs"]
                      if r.get("sweep_command") and r["sweep_command"] != results["command"]})
    if sources:
        lines += ["The runs themselves were made by:", "", "```", *sources, "```", ""]
    lines += [
        "Data: the Amazon 2014 5-core files as released by S3-Rec (research-only, not in the "
        "repository; category = last attribute of an item, used by both protocols). Each "
        "dataset goes through both papers' data protocols once, with the protocol's fixed "
        "split seed (DIN 1234, DIEN 0): **every seed sees the same split**. The seeds vary "
        "`runtime.seed` only: model initialisation, training-data order and negative "
        "sampling. Cells are mean ± sample std over the seeds (no ± with one seed).",
        "",
        "Metrics on the test split: **AUC** (exact, all rows), **GAUC** (DIN paper: per-user "
        "AUC weighted by impressions) and **DIN-repo GAUC** (share of users whose positive "
        "outscores their negative, as the DIN repo reports it). Both protocols give every "
        "test user one (positive, negative) pair, so the two GAUCs coincide up to ties.",
        "",
        "**Published** numbers are quoted beside ours for orientation only: they were measured "
        "on **other datasets** (Electronics, Books) and are not comparable in absolute value; "
        "only the orderings are expected to carry over.",
        "",
    ]
    for mark, (description, _, _) in PUBLISHED.items():
        lines.append(f"- ({mark}) {description}.")
    lines.append("")
    for dataset, protocol in sections:
        table = summary.get((dataset, protocol), {})
        lines.append(f"## {dataset}, {protocol.upper()} protocol")
        lines.append("")
        prepared = results.get("prepared", {}).get(f"{dataset}_{protocol}")
        if prepared:
            lines.append(f"{prepared['train_rows']:,} training rows, {prepared['test_rows']:,} "
                         "test rows.")
            lines.append("")
        if not table:
            lines += ["No finished runs yet.", ""]
            continue
        lines.append("| Model (paper name) | Experiment | AUC | GAUC | DIN-repo GAUC | Seeds "
                     "| Epochs | Published (other dataset) |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for experiment in sorted(table, key=lambda e: order.get(e, len(order))):
            entry = table[experiment]
            cells = [PAPER_NAMES.get(experiment, experiment), f"`{experiment}@{protocol}`"]
            cells += [_fmt(entry.get(metric)) for metric, _ in METRICS]
            cells += [str(len(entry["seeds"])), ", ".join(entry["epochs"]),
                      _published(experiment)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Ordering checks",
        "",
        "Each claimed pair `A < B` of the papers (`≤` where the paper has a tie) on our mean "
        "over seeds: Δ = mean(B) − mean(A); it *holds* when Δ > 0 (≥ 0 for `≤`). Δ is then "
        "compared with the seed std (the larger of the two models' stds): a Δ within it is "
        "not a reliable ordering either way. DIN-paper claims use GAUC, DIEN-paper claims "
        "AUC (the metric each paper reports).",
        "",
    ]
    for dataset, protocol in sections:
        table = summary.get((dataset, protocol), {})
        if not table:
            continue
        lines.append(f"### {dataset}, {protocol.upper()} protocol")
        lines.append("")
        for title, metric, pairs in ORDERINGS:
            checks = ordering_checks(table, metric, pairs)
            if all(c["missing"] for c in checks):
                lines += [f"{title}: not checked (no claimed pair has results for both "
                          "models here).", ""]
                continue
            lines.append(f"{title}, on {dict(METRICS)[metric]}:")
            lines.append("")
            lines.append("| Claim | Δ | Seed std | Verdict |")
            lines.append("|---|---|---|---|")
            for c in checks:
                claim = (f"{PAPER_NAMES.get(c['lower'], c['lower'])} {'<' if c['strict'] else '≤'}"
                         f" {PAPER_NAMES.get(c['upper'], c['upper'])}")
                diff = "—" if c["diff"] is None else f"{c['diff']:+.4f}"
                noise = "—" if c["noise"] is None else f"{c['noise']:.4f}"
                lines.append(f"| {claim} | {diff} | {noise} | {_verdict(c)} |")
            lines.append("")
    failed = [r for r in results["runs"] if r.get("status") != "ok"]
    if failed or results["missing"]:
        lines += ["## Missing runs", ""]
        for r in failed:
            last = (r.get("error") or "").strip().splitlines()
            lines.append(f"- {r['dataset']} {r['protocol']} `{r['experiment']}` seed "
                         f"{r['seed']}: failed ({last[-1][:160] if last else 'no log'}; "
                         "full tail in the JSON)")
        for m in results["missing"]:
            lines.append(f"- {m['dataset']} {m['protocol']} `{m['experiment']}` seed "
                         f"{m['seed']}: not run")
        lines.append("")
    return "\n".join(lines)


# --- Command line -----------------------------------------------------------------------

def _define_flags():
    # Defined only when run as a script, so tests can import this module next
    # to din_tf.experiments.run (whose flags share names with these).
    flags.DEFINE_string("data_dir", DEFAULT_DATA_DIR,
                        "Folder of <dataset>.txt and <dataset>_item2attributes.json.")
    flags.DEFINE_list("datasets", ["Beauty", "Sports_and_Outdoors"], "Dataset names.")
    flags.DEFINE_list("protocols", ["dien", "din"], "Data protocols.")
    flags.DEFINE_list("experiments", None, "Experiment names without '@protocol' (default: "
                                           "the 15 original models and paper/AIGRU, "
                                           "paper/AGRU, paper/AUGRU, paper/DIEN).")
    flags.DEFINE_list("seeds", ["1", "2", "3"], "runtime.seed values (the split stays fixed).")
    flags.DEFINE_string("work_dir", "benchmarks/results/accuracy",
                        "Prepared data and one directory per run.")
    flags.DEFINE_string("params_override", "", "Applied to every run, e.g. trainer.epochs=1.")
    flags.DEFINE_string("output", "benchmarks/results/accuracy.json", "Results JSON.")
    flags.DEFINE_string("markdown", "docs/results.md", "Results tables (markdown).")
    flags.DEFINE_bool("report_only", False, "Re-render from existing results; no training.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        seeds = [int(s) for s in FLAGS.seeds]
    except ValueError:
        print(f"error: --seeds={','.join(FLAGS.seeds)} must be integers, e.g. 1,2,3",
              file=sys.stderr)
        return 2
    sweep = Sweep(
        data_dir=_repo_path(FLAGS.data_dir), datasets=FLAGS.datasets, protocols=FLAGS.protocols,
        experiments=FLAGS.experiments or default_experiments(), seeds=seeds,
        work_dir=_repo_path(FLAGS.work_dir), params_override=FLAGS.params_override,
        output=FLAGS.output and _repo_path(FLAGS.output),
        markdown=FLAGS.markdown and _repo_path(FLAGS.markdown),
        report_only=FLAGS.report_only,
        command=shlex.join(["python", "-m", "benchmarks.accuracy"] + sys.argv[1:]))
    try:
        results = run_sweep(sweep)
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = sum(r["status"] != "ok" for r in results["runs"])
    print(f"{len(results['runs']) - failed} runs ok, {failed} failed, "
          f"{len(results['missing'])} missing; wrote {sweep.output} and {sweep.markdown}")
    return 1 if failed else 0


if __name__ == "__main__":
    _define_flags()
    app.run(main)
