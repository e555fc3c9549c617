"""Experiment configuration: typed dataclasses, JSON files and
`--params_override` strings in the style of TF Model Garden."""

import dataclasses
import json
import os
from typing import Optional

# The bundled dataset lives in the checkout's data/ folder (three levels up).
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLED_DATA_DIR = os.path.join(_CHECKOUT, "data")
BUNDLED_REVIEWS = os.path.join(BUNDLED_DATA_DIR, "reviews_Synthetic_5.json.gz")
BUNDLED_META = os.path.join(BUNDLED_DATA_DIR, "meta_Synthetic.json.gz")


@dataclasses.dataclass
class ModelConfig:
    name: str = "dien_repo/DIEN"   # a key of din_tf.models.MODELS
    options: dict = dataclasses.field(default_factory=dict)  # constructor keyword arguments


@dataclasses.dataclass
class DataConfig:
    protocol: str = "dien"          # "dien" or "din" (the papers' data protocols)
    reviews: str = BUNDLED_REVIEWS  # raw Amazon reviews_<Category>_5.json[.gz]
    meta: str = BUNDLED_META        # raw Amazon meta_<Category>.json[.gz]
    processed_dir: str = ""         # or: a directory of the protocol's files (skips prepare)
    train_batch_size: int = 128
    eval_batch_size: int = 128
    maxlen: Optional[int] = 100     # training truncation (evaluation uses full histories)
    num_negatives: int = 5          # DIEN auxiliary-loss negatives per step
    shuffle: bool = False           # the DIEN repo does not shuffle; the DIN repo does
    bucket_boundaries: Optional[list] = None  # batches of similar history length
    batching: str = "sequential"    # "sequential" (file or shuffled order, or buckets) or
                                    # "dien_iterator" (the DIEN repo's length-sorted chunks)
    prepare_seed: Optional[int] = None  # protocol randomness (None: the protocol's default)
    # Your own log instead of Amazon reviews (din_tf/experiments/log_inputs.py): a log
    # spec (din_tf.data.log_spec.LogSpec) and a feature schema (din_tf.schema), each
    # a JSON file path or an inline object; data_dir resolves the spec's
    # relative paths (default: the spec file's directory).
    log_spec: object = None
    schema: object = None
    data_dir: str = ""


@dataclasses.dataclass
class TrainerConfig:
    epochs: int = 3
    steps_per_epoch: Optional[int] = None  # None: one pass over the training data
    # "original" and None below: the model's training recipe's (din_tf.training.recipes)
    optimizer: str = "original"     # "original", "adam", "lazy_adam", "sgd", "adagrad"
    learning_rate: Optional[float] = None  # None: the optimizer's (original: its schedule)
    halve_lr_each_epoch: bool = True       # DIEN repo: lr *= 0.5 after each epoch
    embedding_update: Optional[str] = None  # "dense" / "rows"; None: the model's recipe's
    gradient_clip_norm: Optional[float] = None  # None: the model's recipe's (DIN repo: 5)
    mba_strength: float = 0.0       # mini-batch-aware L2 lambda (0: off, as in both repos)
    steps_per_execution: int = 1    # training steps per tf.function call (Keras); >1 cuts
                                    # the per-step call overhead that dominates small models


@dataclasses.dataclass
class RuntimeConfig:
    strategy: str = "default"       # "default", "one_device", "mirrored", "multi_worker",
                                    # "parameter_server" (run on the chief, docs/distribute.md)
    min_shard_bytes: Optional[int] = None  # parameter_server: variables above this many
                                    # bytes are split in row shards (None: 1 MiB)
    seed: int = 3                   # the DIEN repo's SEED
    jit_compile: bool = False
    mixed_precision: bool = False


@dataclasses.dataclass
class EvaluationConfig:
    # "served": every test row scored as the export serves it, independent of its
    # batch (Dice moving statistics, padded history steps ignored), so the
    # reported AUC is the served AUC. "original": as the original code scores
    # its test batches (as-coded models: Dice batch statistics, padded steps in
    # the history sum), test batches formed like the training batches.
    scoring: str = "served"


@dataclasses.dataclass
class ExportConfig:
    dice_statistics: str = "moving"  # "moving" (row-independent serving) or "batch" (as coded)


@dataclasses.dataclass
class ExperimentConfig:
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)

    def as_dict(self):
        return dataclasses.asdict(self)

    def validate(self):
        """Checks every field's type and range (din_tf/experiments/config_checks.py);
        raises ValueError naming the dotted key, the value and the expectation."""
        from din_tf.experiments import config_checks
        return config_checks.validate(self)


def from_dict(values, base=None):
    """Overrides `base` (default ExperimentConfig()) with a nested dict; unknown
    keys are an error that names them."""
    config = base if base is not None else ExperimentConfig()
    _merge(config, values, "")
    return config


def _merge(node, values, prefix):
    if not isinstance(values, dict):
        raise ValueError(f"Config section {prefix.rstrip('.') or '<root>'} must be a mapping, "
                         f"received {values!r}.")
    fields = {f.name: f for f in dataclasses.fields(node)}
    unknown = [prefix + k for k in values if k not in fields]
    if unknown:
        raise ValueError(
            f"Unknown config key(s) {unknown}; valid keys under "
            f"{prefix.rstrip('.') or '<root>'}: {sorted(prefix + k for k in fields)}.")
    for key, value in values.items():
        current = getattr(node, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, f"{prefix}{key}.")
        elif isinstance(current, dict) and isinstance(value, dict):
            setattr(node, key, {**current, **value})
        else:
            setattr(node, key, value)


def parse_overrides(text):
    """`"a.b=1,c.d=x"` or a JSON object string → nested dict.

    Values are read as JSON where possible (numbers, true/false/null, lists,
    objects), else kept as strings.
    """
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"--params_override is not valid JSON: {e}") from None
    result = {}
    for item in _split_top_level(text):
        if "=" not in item:
            raise ValueError(
                f"--params_override item {item!r} is not of the form key=value "
                "(e.g. trainer.epochs=1,data.train_batch_size=64).")
        key, value = item.split("=", 1)
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _value(value.strip())
    return result


def _split_top_level(text):
    """Splits on commas outside brackets/braces/quotes."""
    items, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [i.strip() for i in items if i.strip()]


def _value(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_file(path):
    """Reads a JSON config file (the format `config.json` in a model_dir uses)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f"--config_file {path!r} does not exist.") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"--config_file {path!r} is not valid JSON: {e}") from None


def differences(a, b, prefix=""):
    """Dotted keys whose values differ between two nested dicts."""
    keys = sorted(set(a) | set(b))
    diffs = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict) and k != "options":
            diffs += differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            diffs.append(f"{prefix}{k}")
    return diffs
