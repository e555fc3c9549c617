"""din_tf: Alibaba's DIN and DIEN CTR models for TensorFlow 2 / Keras 3,
numerically faithful to the original TensorFlow-1 code."""

from din_tf import features, layers

__version__ = "0.1.0"

__all__ = ["features", "layers", "__version__"]
