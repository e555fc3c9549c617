"""Training recipes: how each model family trains, one object per family.

A `TrainingRecipe` holds everything a family's training script fixes: the
optimizer and its learning-rate schedule, gradient clipping, how embedding
gradients update their tables, the batches (sizes, order, truncation), the
epochs and the seed. Every place that trains reads it, and nothing else
states these values:

* models: `CTRModel.compile` takes the optimizer, clipping and embedding
  update it is not given from `model.training_recipe` (`recipe_for` of the
  model's family);
* experiments: the registry writes a recipe's batches, epochs, schedule and
  seed into each experiment's config; the runner resolves the trainer fields
  left to "the model's default" (`optimizer="original"`, and None for
  `learning_rate`, `embedding_update`, `gradient_clip_norm`) from the model's
  recipe;
* benchmarks: mode "faithful" trains with the model's recipe, mode "fast"
  with `mode_recipe(recipe, "fast")`.

`embedding_update` has no default of its own anywhere: left None, it is the
model's recipe's ("dense" for the DIEN repo's family, as TF1's Adam moved
every row; "rows" for the DIN repo's and the fast recipe).
"""

import dataclasses
import math
from typing import Optional, Tuple

import keras

from din_tf.training.fused_adam import FusedAdam
from din_tf.training.lazy_adam import LazyAdam

# TF1 Adam's epsilon (both repos' AdamOptimizer); Keras' default is 1e-7.
TF1_ADAM_EPSILON = 1e-8

# How embedding gradients update their tables (see `CTRModel.compile`).
EMBEDDING_UPDATES = ("dense", "rows")
# How training batches are formed (see `din_tf.experiments.inputs`).
BATCHINGS = ("sequential", "dien_iterator")
# The benchmarks' training modes (see `mode_recipe`).
MODES = ("faithful", "fast")


def _adam(learning_rate):
    return FusedAdam(learning_rate, epsilon=TF1_ADAM_EPSILON)


def _lazy_adam(learning_rate):
    return LazyAdam(learning_rate, epsilon=TF1_ADAM_EPSILON)


# name: (builder from a learning rate or schedule, the rate when none is given).
OPTIMIZERS = {
    "adam": (_adam, 1e-3),            # TF1's dense Adam (`FusedAdam`, epsilon 1e-8)
    "lazy_adam": (_lazy_adam, 1e-3),  # Adam on the batch's rows only (`LazyAdam`)
    "sgd": (keras.optimizers.SGD, 1.0),
    "adagrad": (keras.optimizers.Adagrad, 0.01),
}


def make_optimizer(name, learning_rate=None):
    """A fresh optimizer `name` (a key of `OPTIMIZERS`) at `learning_rate`
    (a number or a Keras schedule; None: the optimizer's rate in `OPTIMIZERS`)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"Invalid optimizer={name!r}; expected one of {list(OPTIMIZERS)}.")
    build, default_rate = OPTIMIZERS[name]
    return build(default_rate if learning_rate is None else learning_rate)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_positive_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


@dataclasses.dataclass(frozen=True)
class TrainingRecipe:
    """How a model family trains. Frozen; `replace` gives a validated variant.

    Attributes:
        name: the recipe's name (a key of `RECIPES` for the shipped ones).
        optimizer: a key of `OPTIMIZERS` ("adam" is TF1's dense Adam,
            "lazy_adam" Adam on the batch's rows, "sgd", "adagrad").
        learning_rate: the rate training starts at.
        learning_rate_steps: `((step, rate), ...)` with ascending steps: the
            rate is `rate` once the optimizer's iteration count exceeds
            `step` (Keras' `PiecewiseConstantDecay` boundaries; the DIN repo:
            `((336000, 0.1),)`); empty for a constant rate.
        halve_lr_each_epoch: epoch `e` (0-based) trains at `learning_rate *
            0.5**e` (the DIEN repo's `lr *= 0.5`;
            `din_tf.training.HalveLearningRateEachEpoch`). Not with
            `learning_rate_steps`.
        gradient_clip_norm: clip by global norm as TF1 computed it, or None.
        embedding_update: "dense" (every row moves each step, as TF1's Adam
            moved them) or "rows" (only the batch's rows).
        train_batch_size, eval_batch_size: rows per training / test batch.
        epochs: passes over the training rows.
        shuffle: reshuffle the training rows every epoch.
        batching: "sequential" (file or shuffled order) or "dien_iterator"
            (the DIEN repo's length-sorted chunks of 20 batches).
        maxlen: training histories truncated to their last `maxlen` steps
            (None: whole).
        seed: the run's random seed.
    """

    name: str
    optimizer: str
    learning_rate: float
    learning_rate_steps: Tuple[Tuple[int, float], ...]
    halve_lr_each_epoch: bool
    gradient_clip_norm: Optional[float]
    embedding_update: str
    train_batch_size: int
    eval_batch_size: int
    epochs: int
    shuffle: bool
    batching: str
    maxlen: Optional[int]
    seed: int

    def __post_init__(self):
        def fail(field, expected):
            raise ValueError(f"TrainingRecipe {self.name!r}: invalid {field}="
                             f"{getattr(self, field)!r}; expected {expected}.")

        if not isinstance(self.name, str) or not self.name:
            fail("name", "a non-empty string")
        if self.optimizer not in OPTIMIZERS:
            fail("optimizer", f"one of {list(OPTIMIZERS)}")
        if not _is_positive_number(self.learning_rate):
            fail("learning_rate", "a finite number > 0")
        steps = self.learning_rate_steps
        if (not isinstance(steps, tuple)
                or not all(isinstance(s, tuple) and len(s) == 2 and _is_int(s[0]) and s[0] > 0
                           and _is_positive_number(s[1]) for s in steps)
                or any(a[0] >= b[0] for a, b in zip(steps, steps[1:]))):
            fail("learning_rate_steps", "a tuple of (step, rate) pairs, steps ascending "
                 "positive integers, rates finite numbers > 0")
        if not isinstance(self.halve_lr_each_epoch, bool):
            fail("halve_lr_each_epoch", "True or False")
        if self.halve_lr_each_epoch and steps:
            fail("halve_lr_each_epoch", "False with learning_rate_steps (the per-epoch "
                 "halving sets a constant rate)")
        if self.gradient_clip_norm is not None and not _is_positive_number(
                self.gradient_clip_norm):
            fail("gradient_clip_norm", "None or a finite number > 0")
        if self.embedding_update not in EMBEDDING_UPDATES:
            fail("embedding_update", f"one of {list(EMBEDDING_UPDATES)}")
        for field in ("train_batch_size", "eval_batch_size", "epochs"):
            if not _is_int(getattr(self, field)) or getattr(self, field) < 1:
                fail(field, "an integer >= 1")
        if not isinstance(self.shuffle, bool):
            fail("shuffle", "True or False")
        if self.batching not in BATCHINGS:
            fail("batching", f"one of {list(BATCHINGS)}")
        if self.batching == "dien_iterator" and self.shuffle:
            fail("shuffle", "False with batching='dien_iterator' (a fixed batch order)")
        if self.maxlen is not None and (not _is_int(self.maxlen) or self.maxlen < 1):
            fail("maxlen", "None or an integer >= 1")
        if not _is_int(self.seed) or self.seed < 0:
            fail("seed", "an integer >= 0")

    def replace(self, **changes):
        """A copy with `changes`, validated."""
        return dataclasses.replace(self, **changes)

    def learning_rate_schedule(self):
        """The rate as the optimizer takes it: `learning_rate`, or a
        `PiecewiseConstantDecay` with `learning_rate_steps`."""
        if not self.learning_rate_steps:
            return self.learning_rate
        boundaries = [step for step, _ in self.learning_rate_steps]
        rates = [self.learning_rate] + [rate for _, rate in self.learning_rate_steps]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, rates)

    def make_optimizer(self, learning_rate=None):
        """A fresh optimizer of this recipe; `learning_rate` (a number)
        replaces the whole schedule by that constant rate."""
        return make_optimizer(self.optimizer, self.learning_rate_schedule()
                              if learning_rate is None else learning_rate)


# The DIEN repo's script/train.py: Adam(1e-3) halved after every epoch, dense
# embedding updates (TF1's Adam), batches of 128 (test too) in DataIterator's
# length-sorted chunks, histories cut to 100, 3 epochs, SEED = 3.
DIEN_REPO = TrainingRecipe(
    name="dien_repo", optimizer="adam", learning_rate=1e-3, learning_rate_steps=(),
    halve_lr_each_epoch=True, gradient_clip_norm=None, embedding_update="dense",
    train_batch_size=128, eval_batch_size=128, epochs=3, shuffle=False,
    batching="dien_iterator", maxlen=100, seed=3)

# The DIN repo's din/train.py: SGD at lr 1.0, 0.1 from step 336000, clipping
# by a global norm of 5 over un-merged embedding slices, sparse row updates
# (TF1's SGD on IndexedSlices), batch 32, test batch 512, shuffled every epoch,
# whole histories, 50 epochs, seed 1234.
DIN_REPO = TrainingRecipe(
    name="din_repo", optimizer="sgd", learning_rate=1.0,
    learning_rate_steps=((336000, 0.1),), halve_lr_each_epoch=False, gradient_clip_norm=5.0,
    embedding_update="rows", train_batch_size=32, eval_batch_size=512, epochs=50,
    shuffle=True, batching="sequential", maxlen=None, seed=1234)

# The DIN repo's deepFM/train.py: Adam(1e-3), here at a constant rate (its
# `lr *= 0.9` at every multiple of 336000 steps is not reproduced); the rest
# as its other models.
DIN_REPO_DEEPFM = DIN_REPO.replace(name="din_repo/deepfm", optimizer="adam",
                                   learning_rate=1e-3, learning_rate_steps=())

# The DIN repo's wide_deep/train.py runs 30 epochs; the rest as din/train.py.
DIN_REPO_WIDE_DEEP = DIN_REPO.replace(name="din_repo/wide_deep", epochs=30)

# Your own log (the registry's own_log/* and movielens100k/* experiments):
# lazy Adam(1e-3) on the batch's rows, no clipping, batches of 128 shuffled
# every epoch, histories cut to 100, 2 epochs.
FAST = TrainingRecipe(
    name="fast", optimizer="lazy_adam", learning_rate=1e-3, learning_rate_steps=(),
    halve_lr_each_epoch=False, gradient_clip_norm=None, embedding_update="rows",
    train_batch_size=128, eval_batch_size=128, epochs=2, shuffle=True,
    batching="sequential", maxlen=100, seed=3)

RECIPES = {recipe.name: recipe for recipe in (DIEN_REPO, DIN_REPO, DIN_REPO_DEEPFM,
                                               DIN_REPO_WIDE_DEEP, FAST)}

# Model families that train with another family's recipe: the DIN paper's
# baselines are built on the DIEN repo's models and train as they do.
FAMILY_RECIPES = {"dien_repo": "dien_repo", "din_repo": "din_repo", "baseline": "dien_repo"}


def recipe_for(name):
    """The recipe of `name`: a recipe name (a key of `RECIPES`, e.g. "fast"),
    a model family ("dien_repo", "din_repo", "baseline") or a model name
    ("dien_repo/DIEN", "din_repo/deepfm", "baseline/LR"): the recipe of that
    exact name if there is one, else its family's."""
    if name in RECIPES:
        return RECIPES[name]
    family = name.split("/", 1)[0] if isinstance(name, str) else None
    if family not in FAMILY_RECIPES:
        raise ValueError(f"No training recipe for {name!r}; expected a recipe name "
                         f"{sorted(RECIPES)} or a model name or family of "
                         f"{sorted(FAMILY_RECIPES)}.")
    return RECIPES[FAMILY_RECIPES[family]]


def mode_recipe(recipe, mode):
    """`recipe` as the benchmarks train in `mode`: "faithful" is `recipe`
    itself; "fast" takes the optimizer, learning-rate schedule and embedding
    update of the "fast" recipe (lazy Adam on the batch's rows) and keeps the
    rest of `recipe` (clipping, batches)."""
    if mode not in MODES:
        raise ValueError(f"Invalid mode={mode!r}; expected one of {list(MODES)}.")
    if mode == "faithful":
        return recipe
    fast = RECIPES["fast"]
    return recipe.replace(
        name=f"{recipe.name}+fast", optimizer=fast.optimizer, learning_rate=fast.learning_rate,
        learning_rate_steps=fast.learning_rate_steps,
        halve_lr_each_epoch=fast.halve_lr_each_epoch, embedding_update=fast.embedding_update)
