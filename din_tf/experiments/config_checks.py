"""Type and range checks for every field of an ExperimentConfig.

Configs arrive from JSON files and `--params_override` strings, where a typo
gives a string for a bool or a float for an int; each check here names the
dotted key, the value received and what was expected, before anything is
trained or written.
"""

import inspect
import math
import numbers

PROTOCOLS = ("dien", "din")
# Constructor arguments the registry fills in itself (vocabulary sizes).
_VOCABULARY_ARGUMENTS = ("n_users", "n_items", "n_categories")


def _fail(key, value, expected):
    raise ValueError(f"Invalid {key}={value!r}; expected {expected}.")


def _is_int(value):
    # bool is an int subclass, but `epochs=true` is a typo, not 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _int_at_least(key, value, minimum, optional=False):
    if optional and value is None:
        return
    if not _is_int(value) or value < minimum:
        _fail(key, value, f"{'null or ' if optional else ''}an integer >= {minimum}")


def _positive_number(key, value, optional=False):
    if optional and value is None:
        return
    if not _is_number(value) or value <= 0:
        _fail(key, value, f"{'null or ' if optional else ''}a finite number > 0")


def _boolean(key, value):
    if not isinstance(value, bool):
        _fail(key, value, "true or false")


def _choice(key, value, choices, optional=False):
    if optional and value is None:
        return
    if value not in choices:
        _fail(key, value, f"{'null or ' if optional else ''}one of {list(choices)}")


def _string(key, value):
    if not isinstance(value, str):
        _fail(key, value, "a string (a file or directory path, or empty)")


def validate(cfg):
    """Raises ValueError naming the first invalid field of `cfg`."""
    # The choices come from the modules that act on them (imported here, not at
    # the top, so reading a config does not import TensorFlow).
    from din_tf.distribute import STRATEGY_NAMES
    from din_tf.export import DICE_STATISTICS
    from din_tf.training.recipes import EMBEDDING_UPDATES, OPTIMIZERS
    from din_tf.experiments.evaluation import SCORINGS
    _validate_model(cfg.model)
    _validate_data(cfg.data)
    _validate_own_log(cfg)
    # "original": the model's recipe's optimizer (runner._optimizer).
    _validate_trainer(cfg.trainer, ("original", *OPTIMIZERS), EMBEDDING_UPDATES)
    _validate_runtime(cfg.runtime, STRATEGY_NAMES)
    _choice("evaluation.scoring", cfg.evaluation.scoring, SCORINGS)
    _choice("export.dice_statistics", cfg.export.dice_statistics, DICE_STATISTICS)
    return cfg


def _validate_model(model):
    from din_tf.models.registry import BASELINE_MODELS, MODELS, ORIGINAL_MODELS
    if not isinstance(model.name, str) or model.name not in MODELS:
        _fail("model.name", model.name,
              f"one of {sorted(ORIGINAL_MODELS) + sorted(BASELINE_MODELS)}")
    if not isinstance(model.options, dict):
        _fail("model.options", model.options, "a mapping of constructor arguments")
    cls, fixed = MODELS[model.name]
    clash = sorted(set(fixed) & set(model.options))
    if clash:
        raise ValueError(
            f"Invalid model.options: {clash} are fixed by {model.name} "
            f"({', '.join(f'{k}={fixed[k]!r}' for k in clash)}); choose the model name with "
            "the values you want instead.")
    accepted = _constructor_arguments(cls) - set(fixed)
    unknown = sorted(set(model.options) - accepted)
    if unknown:
        raise ValueError(f"Invalid model.options: unknown option(s) {unknown} for "
                         f"{model.name}; expected some of {sorted(accepted)}.")


def _constructor_arguments(cls):
    """Named arguments of `cls.__init__` and of every model base it forwards
    **kwargs to (stopping before keras.Model, whose arguments are not options)."""
    from din_tf.models.ctr_model import CTRModel
    names = set()
    for klass in cls.__mro__:
        if not (isinstance(klass, type) and issubclass(klass, CTRModel)):
            break
        if "__init__" not in vars(klass):
            continue
        for parameter in inspect.signature(vars(klass)["__init__"]).parameters.values():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                names.add(parameter.name)
    return names - {"self", "name", "schema", *_VOCABULARY_ARGUMENTS}


def _validate_data(data):
    _choice("data.protocol", data.protocol, PROTOCOLS)
    for key in ("reviews", "meta", "processed_dir"):
        _string(f"data.{key}", getattr(data, key))
    _int_at_least("data.train_batch_size", data.train_batch_size, 1)
    _int_at_least("data.eval_batch_size", data.eval_batch_size, 1)
    _int_at_least("data.maxlen", data.maxlen, 1, optional=True)
    _int_at_least("data.num_negatives", data.num_negatives, 1)
    _boolean("data.shuffle", data.shuffle)
    _int_at_least("data.prepare_seed", data.prepare_seed, 0, optional=True)
    boundaries = data.bucket_boundaries
    if boundaries is not None:
        expected = "null or a list of ascending positive integers, e.g. [10, 20, 50]"
        if not isinstance(boundaries, (list, tuple)) or not boundaries or \
                not all(_is_int(b) and b > 0 for b in boundaries) or \
                any(a >= b for a, b in zip(boundaries, boundaries[1:])):
            _fail("data.bucket_boundaries", boundaries, expected)
    from din_tf.experiments.inputs import BATCHINGS
    _choice("data.batching", data.batching, BATCHINGS)
    if data.batching == "dien_iterator" and (data.shuffle or boundaries):
        key, value = (("data.shuffle", data.shuffle) if data.shuffle
                      else ("data.bucket_boundaries", boundaries))
        _fail(key, value, "false / null with data.batching='dien_iterator' (the DIEN repo's "
              "fixed, length-sorted batch order); set data.batching='sequential' to shuffle "
              "or bucket")


def _validate_own_log(cfg):
    data = cfg.data
    for key in ("log_spec", "schema"):
        value = getattr(data, key)
        if value is not None and not isinstance(value, (str, dict)):
            _fail(f"data.{key}", value, "null, a JSON file path or an object")
    _string("data.data_dir", data.data_dir)
    if not (data.log_spec or data.schema):
        return
    if cfg.model.name.startswith("din_repo/"):
        _fail("model.name", cfg.model.name, "a dien_repo/* or baseline/* model with "
              "data.log_spec (the DIN repo's models read the originals' inputs only)")
    if data.batching != "sequential" or data.bucket_boundaries:
        key, value = (("data.batching", data.batching) if data.batching != "sequential"
                      else ("data.bucket_boundaries", data.bucket_boundaries))
        _fail(key, value, "'sequential' / null with data.log_spec (your own log's batches "
              "are formed in file or shuffled order)")


def _validate_trainer(trainer, optimizers, embedding_updates):
    _int_at_least("trainer.epochs", trainer.epochs, 1)
    _int_at_least("trainer.steps_per_epoch", trainer.steps_per_epoch, 1, optional=True)
    _choice("trainer.optimizer", trainer.optimizer, optimizers)
    _positive_number("trainer.learning_rate", trainer.learning_rate, optional=True)
    _boolean("trainer.halve_lr_each_epoch", trainer.halve_lr_each_epoch)
    _choice("trainer.embedding_update", trainer.embedding_update, embedding_updates,
            optional=True)
    _positive_number("trainer.gradient_clip_norm", trainer.gradient_clip_norm, optional=True)
    if not _is_number(trainer.mba_strength) or trainer.mba_strength < 0:
        _fail("trainer.mba_strength", trainer.mba_strength, "a finite number >= 0 (0: off)")
    _int_at_least("trainer.steps_per_execution", trainer.steps_per_execution, 1)


def _validate_runtime(runtime, strategies):
    _choice("runtime.strategy", runtime.strategy, strategies)
    _int_at_least("runtime.min_shard_bytes", runtime.min_shard_bytes, 1, optional=True)
    if runtime.min_shard_bytes is not None and runtime.strategy != "parameter_server":
        _fail("runtime.min_shard_bytes", runtime.min_shard_bytes,
              "null unless runtime.strategy is 'parameter_server' (only it splits variables)")
    if runtime.strategy == "parameter_server" and runtime.jit_compile is True:
        _fail("runtime.jit_compile", runtime.jit_compile,
              "false with runtime.strategy='parameter_server' (the parameter-server trainer "
              "does not XLA-compile its step)")
    _int_at_least("runtime.seed", runtime.seed, 0)
    _boolean("runtime.jit_compile", runtime.jit_compile)
    _boolean("runtime.mixed_precision", runtime.mixed_precision)
