"""The originals' optimizers and learning-rate schedules."""

import keras

# TF1 Adam's epsilon; Keras' default is 1e-7.
TF1_ADAM_EPSILON = 1e-8
DIN_REPO_LR_SWITCH_STEP = 336000


def original_optimizer(preset):
    """A fresh optimizer as the original training scripts configure it.

    * "dien_repo": Adam(lr 1e-3, beta 0.9 / 0.999, epsilon 1e-8); pair it with
      `HalveLearningRateEachEpoch` and dense embedding updates.
    * "din_repo": SGD with lr 1.0 for 336k steps, then 0.1; pair it with
      `gradient_clip_norm=5` (clipping as coded).
    """
    if preset == "dien_repo":
        return keras.optimizers.Adam(learning_rate=1e-3, epsilon=TF1_ADAM_EPSILON)
    if preset == "din_repo":
        return keras.optimizers.SGD(learning_rate=original_learning_rate("din_repo"))
    raise ValueError(f"Invalid preset={preset!r}; expected one of ['dien_repo', 'din_repo'].")


def original_learning_rate(preset):
    """The DIN repo's step schedule (1.0, then 0.1 from step 336000); the DIEN
    repo's constant 1e-3 (halved per epoch by the callback)."""
    if preset == "din_repo":
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [DIN_REPO_LR_SWITCH_STEP], [1.0, 0.1])
    if preset == "dien_repo":
        return 1e-3
    raise ValueError(f"Invalid preset={preset!r}; expected one of ['dien_repo', 'din_repo'].")


class HalveLearningRateEachEpoch(keras.callbacks.Callback):
    """Multiplies the optimizer's learning rate by `factor` after every epoch,
    as the DIEN repo's train.py does (`lr *= 0.5`)."""

    def __init__(self, factor=0.5):
        super().__init__()
        if not 0 < factor <= 1:
            raise ValueError(f"Invalid factor={factor!r}; expected 0 < factor <= 1.")
        self.factor = factor

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        optimizer.learning_rate.assign(optimizer.learning_rate * self.factor)
