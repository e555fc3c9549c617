"""The originals' optimizers and learning-rate schedules (each family's
`din_tf.training.recipes` recipe states them)."""

import keras

from din_tf.training.recipes import RECIPES, TF1_ADAM_EPSILON  # noqa: F401 (public name)

_ORIGINAL_PRESETS = ("dien_repo", "din_repo")


def _original_recipe(preset):
    if preset not in _ORIGINAL_PRESETS:
        raise ValueError(f"Invalid preset={preset!r}; expected one of {list(_ORIGINAL_PRESETS)}.")
    return RECIPES[preset]


def original_optimizer(preset):
    """A fresh optimizer as the original training scripts configure it: the
    "dien_repo" or "din_repo" recipe's (`din_tf.training.recipes`).

    * "dien_repo": Adam(lr 1e-3, beta 0.9 / 0.999, epsilon 1e-8), as
      `FusedAdam` (TF1's fused dense kernel); pair it with
      `HalveLearningRateEachEpoch` and dense embedding updates.
    * "din_repo": SGD with lr 1.0 for 336k steps, then 0.1; pair it with
      `gradient_clip_norm=5` (clipping as coded).
    """
    return _original_recipe(preset).make_optimizer()


def original_learning_rate(preset):
    """The DIN repo's step schedule (1.0, then 0.1 from step 336000); the DIEN
    repo's constant 1e-3 (halved per epoch by the callback)."""
    return _original_recipe(preset).learning_rate_schedule()


class HalveLearningRateEachEpoch(keras.callbacks.Callback):
    """Trains epoch `e` (0-based) at `initial_learning_rate * factor**e`, as the
    DIEN repo's train.py does with `lr *= 0.5` after every epoch.

    The rate is set from the epoch number at the start of each epoch instead of
    halving whatever the optimizer holds, so a run resumed at epoch `e` (e.g.
    `fit(initial_epoch=e)` after a crash) gets the same rate as an
    uninterrupted one, whatever learning rate its checkpoint restored. After
    each epoch the optimizer holds the next epoch's rate (as after the
    original's `lr *= 0.5`), and the logs get the finished epoch's
    `learning_rate`.

    Args:
      factor: the per-epoch multiplier, 0 < factor <= 1.
      initial_learning_rate: the rate of epoch 0; None reads the optimizer's
        rate when training first begins.
    """

    def __init__(self, factor=0.5, initial_learning_rate=None):
        super().__init__()
        if not 0 < factor <= 1:
            raise ValueError(f"Invalid factor={factor!r}; expected 0 < factor <= 1.")
        if initial_learning_rate is not None and not initial_learning_rate > 0:
            raise ValueError(f"Invalid initial_learning_rate={initial_learning_rate!r}; "
                             "expected a positive number or None.")
        self.factor = factor
        self.initial_learning_rate = initial_learning_rate

    def learning_rate(self, epoch):
        """The rate epoch `epoch` (0-based) trains at."""
        return self.initial_learning_rate * self.factor ** epoch

    def on_train_begin(self, logs=None):
        rate = self.model.optimizer.learning_rate
        if not isinstance(rate, keras.Variable):
            raise ValueError(
                "HalveLearningRateEachEpoch needs an optimizer with a constant learning rate "
                f"(a variable it can set), got a {type(rate).__name__} computed by a "
                "learning-rate schedule; drop the callback or the schedule.")
        if self.initial_learning_rate is None:
            self.initial_learning_rate = float(rate.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.learning_rate.assign(self.learning_rate(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.learning_rate(epoch)
        self.model.optimizer.learning_rate.assign(self.learning_rate(epoch + 1))
