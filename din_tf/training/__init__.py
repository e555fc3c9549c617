"""Model-independent training mechanics used by `din_tf.models.CTRModel`:
regularizers, gradient processing, optimizers and each model family's
training recipe (`recipes`)."""

from din_tf.training.gradients import (
    clip_by_global_norm_as_coded,
    densify,
    global_norm_as_coded,
    merge_duplicate_rows,
)
from din_tf.training.fused_adam import FusedAdam
from din_tf.training.lazy_adam import LazyAdam
from din_tf.training.optimizers import (
    HalveLearningRateEachEpoch,
    original_learning_rate,
    original_optimizer,
)
from din_tf.training.recipes import RECIPES, TrainingRecipe, recipe_for
from din_tf.training.regularizers import EmbeddingL2, MiniBatchAwareL2

__all__ = [
    "EmbeddingL2",
    "FusedAdam",
    "HalveLearningRateEachEpoch",
    "LazyAdam",
    "MiniBatchAwareL2",
    "RECIPES",
    "TrainingRecipe",
    "clip_by_global_norm_as_coded",
    "densify",
    "global_norm_as_coded",
    "merge_duplicate_rows",
    "original_learning_rate",
    "original_optimizer",
    "recipe_for",
]
