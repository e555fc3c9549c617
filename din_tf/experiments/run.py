r"""The experiment runner, in the style of TF Model Garden `official/`.

  python -m din_tf.experiments.run                                 # DIEN on the bundled data
  python -m din_tf.experiments.run --experiment=dien_repo/DIN@din --model_dir=runs/din \
      --params_override=trainer.epochs=2,data.train_batch_size=64
  python -m din_tf.experiments.run --list_experiments

Configuration is layered: the named experiment, then `--config_file` (JSON),
then `--params_override` ("a.b=1,c.d=x" or a JSON object), then the explicit
flags below. The resolved config is written to `<model_dir>/config.json`.

`--mode=train_and_eval` (default) trains, evaluates on the test set every
epoch and at the end, and exports a SavedModel (`--noexport` to skip);
`train`, `eval` and `export` do one thing. Outputs in `--model_dir`:
`config.json`, `backup/` (resume point: an interrupted run, even one killed
mid-write, started again with the same `--model_dir` resumes after its last
finished epoch and ends as if never interrupted),
`checkpoints/epoch_NNN.weights.h5`, `final.weights.h5`, `tensorboard/`,
`metrics.json` / `metrics.csv` (per epoch: losses, AUC, GAUC), `curves.png`,
`eval.json`, `export/1` (SavedModel, TF-Serving layout).
"""

import json
import os

from absl import app, flags, logging

# Imported first: din_tf quiets TensorFlow's C++ start-up log for this command
# before TensorFlow loads (--verbose_tf or TF_CPP_MIN_LOG_LEVEL keep it).
from din_tf import _command_line  # noqa: I001
from din_tf.experiments import config as C
from din_tf.experiments import registry
from din_tf.experiments.runner import RunnerError, run

FLAGS = flags.FLAGS
flags.DEFINE_string("experiment", "default", "A named experiment (--list_experiments).")
flags.DEFINE_bool("list_experiments", False, "Print the known experiments and exit.")
flags.DEFINE_string("config_file", None, "A JSON config overriding the experiment's.")
flags.DEFINE_string("params_override", None, "Overrides: 'a.b=1,c.d=x' or a JSON object.")
flags.DEFINE_string("model_dir", None, "Where checkpoints, logs and exports go "
                                       "(default: runs/<experiment>).")
flags.DEFINE_enum("mode", "train_and_eval", ["train", "eval", "train_and_eval", "export"],
                  "What to run.")
flags.DEFINE_bool("export", True, "With --mode=train_and_eval: also export a SavedModel.")
flags.DEFINE_enum("strategy", None, ["default", "one_device", "mirrored", "multi_worker",
                                     "parameter_server"],
                  "tf.distribute strategy (runtime.strategy); parameter_server: run this on "
                  "the chief, `python -m din_tf.cluster_task` on workers and PS.")
flags.DEFINE_integer("seed", None, "Random seed (runtime.seed).")
flags.DEFINE_bool("jit_compile", None, "XLA-compile the training step (runtime.jit_compile).")
flags.DEFINE_bool("mixed_precision", None, "mixed_float16 policy (runtime.mixed_precision).")
flags.DEFINE_integer("epochs", None, "trainer.epochs.")
flags.DEFINE_integer("steps_per_epoch", None, "trainer.steps_per_epoch.")
flags.DEFINE_string("reviews", None, "data.reviews: raw Amazon reviews file.")
flags.DEFINE_string("meta", None, "data.meta: raw Amazon meta file.")
flags.DEFINE_string("processed_dir", None, "data.processed_dir: the protocol's files.")
flags.DEFINE_string("data_dir", None, "data.data_dir: where your own log's files are (the "
                                      "log spec's relative paths are read from it).")
flags.DEFINE_bool(_command_line.VERBOSE_FLAG, False, _command_line.VERBOSE_HELP)

FLAG_TO_KEY = {
    "strategy": "runtime.strategy", "seed": "runtime.seed",
    "jit_compile": "runtime.jit_compile", "mixed_precision": "runtime.mixed_precision",
    "epochs": "trainer.epochs", "steps_per_epoch": "trainer.steps_per_epoch",
    "reviews": "data.reviews", "meta": "data.meta", "processed_dir": "data.processed_dir",
    "data_dir": "data.data_dir",
}


def resolve_config(experiment, config_file=None, params_override=None, flag_values=None):
    """The layered config (see the module docstring)."""
    cfg = registry.get_experiment(experiment)
    if config_file:
        cfg = C.from_dict(_paths_from(config_file, C.load_file(config_file)), cfg)
    cfg = C.from_dict(C.parse_overrides(params_override), cfg)
    for flag, key in FLAG_TO_KEY.items():
        value = (flag_values or {}).get(flag)
        if value is not None:
            section, name = key.split(".")
            cfg = C.from_dict({section: {name: value}}, cfg)
    return cfg


def _paths_from(config_file, values):
    """A config file's own-log files (data.log_spec, data.schema) given as
    relative paths are read next to the config file."""
    data = values.get("data") if isinstance(values, dict) else None
    if isinstance(data, dict):
        base = os.path.dirname(os.path.abspath(config_file))
        for key in ("log_spec", "schema"):
            value = data.get(key)
            if isinstance(value, str) and value and not os.path.isabs(value):
                data[key] = os.path.join(base, value)
    return values


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.list_experiments:
        print("\n".join(sorted(registry.EXPERIMENTS)))
        return 0
    flag_values = {flag: FLAGS[flag].value for flag in FLAG_TO_KEY}
    cfg = resolve_config(FLAGS.experiment, FLAGS.config_file, FLAGS.params_override,
                         flag_values)
    model_dir = FLAGS.model_dir or os.path.join("runs", FLAGS.experiment.replace("/", "_"))
    results = run(cfg, model_dir, FLAGS.mode, export=FLAGS.export)
    if results:
        print(json.dumps(results, indent=2, sort_keys=True))
    print(f"experiment {FLAGS.experiment} ({cfg.model.name}, {cfg.data.protocol} protocol, "
          f"--mode={FLAGS.mode}) finished; outputs in {model_dir}")
    return 0


# Bad input (config, flags, data files, model_dir) is one line and exit code 2;
# OSError covers unreadable or missing files, whose messages name the path.
main_reporting_errors = _command_line.report_errors(main, (ValueError, RunnerError, OSError))


if __name__ == "__main__":
    app.run(main_reporting_errors, flags_parser=_command_line.parse_flags)
