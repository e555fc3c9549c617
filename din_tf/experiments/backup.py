"""The resume point of a training run: `<model_dir>/backup/epoch_NNN/`.

After every finished epoch the runner saves one folder holding
`model.weights.h5` (model weights and optimizer state: Adam moments,
iteration count, learning rate) and `state.json` (the number of finished
epochs and the optimizer's iteration count). The folder is filled under a
temporary name, flushed, and renamed to `epoch_NNN` only when complete, with
`state.json` written last; weights and epoch count can therefore never
disagree, and a folder named `epoch_NNN` is always whole. A killed save
leaves only a `.partial-*` folder, which `restore` deletes and never reads.

Everything else a resumed run needs is a function of the epoch number and
the config (the epoch's data, its learning rate), so these files are the
whole state.
"""

import json
import os
import re
import shutil
import tempfile

import keras
from absl import logging

from din_tf._pause_for_kill_test import pause_if_requested
from din_tf.experiments import atomic_files

WEIGHTS_FILE = "model.weights.h5"
STATE_FILE = "state.json"
_FOLDER = re.compile(r"epoch_(\d+)$")


def save(model, backup_dir, finished_epochs):
    os.makedirs(backup_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=atomic_files.PARTIAL_PREFIX, dir=backup_dir)
    weights = os.path.join(staging, WEIGHTS_FILE)
    model.save_weights(weights)
    atomic_files.fsync_file(weights)
    pause_if_requested(f"backup_write:{finished_epochs}", weights)
    atomic_files.write_json(os.path.join(staging, STATE_FILE), {
        "finished_epochs": finished_epochs,
        "optimizer_iterations": _iterations(model)})
    atomic_files.fsync_directory(staging)
    final = os.path.join(backup_dir, f"epoch_{finished_epochs:03d}")
    if os.path.exists(final):  # an older run's, about to be superseded
        shutil.rmtree(final)
    os.rename(staging, final)
    atomic_files.fsync_directory(backup_dir)
    for number, folder in _complete_backups(backup_dir):
        if number != finished_epochs:
            shutil.rmtree(folder, ignore_errors=True)


def restore(model, backup_dir):
    """Loads the newest complete backup into `model` (compiled, optimizer
    not yet trained) and returns its number of finished epochs; 0 when there
    is none."""
    atomic_files.remove_partials(backup_dir)
    backups = _complete_backups(backup_dir)
    if not backups:
        if os.path.exists(os.path.join(backup_dir, "latest.weights.h5")):
            logging.warning("%s holds a keras BackupAndRestore file from an older runner, "
                            "which saved a stale learning rate; it is not used and training "
                            "starts from epoch 1.", backup_dir)
        return 0
    finished_epochs, folder = max(backups)
    with open(os.path.join(folder, STATE_FILE), encoding="utf-8") as f:
        state = json.load(f)
    if state.get("finished_epochs") != finished_epochs:
        raise ValueError(f"{os.path.join(folder, STATE_FILE)} says finished_epochs="
                         f"{state.get('finished_epochs')!r}; expected {finished_epochs} "
                         "(its folder's number). Delete the folder to resume from scratch.")
    # Keras skips (with only a warning) optimizer state it has no variables
    # for yet, so the optimizer's slots must exist before loading.
    if not model.optimizer.built:
        with model.distribute_strategy.scope():
            model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(folder, WEIGHTS_FILE))
    iterations = _iterations(model)
    if iterations != state["optimizer_iterations"]:
        raise ValueError(
            f"{os.path.join(folder, WEIGHTS_FILE)} restored optimizer iterations={iterations}; "
            f"expected {state['optimizer_iterations']} (its {STATE_FILE}): the optimizer "
            "state was not loaded, so resuming would not continue the same training.")
    return finished_epochs


def _complete_backups(backup_dir):
    """[(finished epochs, folder)] of the backups whose state.json exists."""
    if not os.path.isdir(backup_dir):
        return []
    found = []
    for name in os.listdir(backup_dir):
        match = _FOLDER.match(name)
        folder = os.path.join(backup_dir, name)
        if match and os.path.isfile(os.path.join(folder, STATE_FILE)):
            found.append((int(match.group(1)), folder))
    return found


def _iterations(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))
