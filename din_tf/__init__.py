"""din_tf: Alibaba's DIN and DIEN CTR models for TensorFlow 2 / Keras 3,
numerically faithful to the original TensorFlow-1 code.

Subpackages: `schema` (what a model reads) → `layers` → `training` →
`models`; `data` feeds them;
`metrics` evaluates; `export` and `distribute` are imported on demand.
"""

from din_tf import _command_line

# `python -m din_tf.data.prepare` and `python -m din_tf.experiments.run` import this
# package before their own code runs: quiet TensorFlow's start-up here.
_command_line.quiet_tensorflow_for_commands()

from din_tf import data, features, layers, metrics, models, schema, training  # noqa: E402

__version__ = "0.1.0"

__all__ = ["data", "features", "layers", "metrics", "models", "schema", "training",
           "__version__"]
