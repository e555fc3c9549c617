"""Writes that a crash (even SIGKILL or a power cut) cannot leave half done.

Every file is written under a temporary name in its final directory, flushed
to disk, then renamed over the final name (a rename within one directory is
atomic), and the directory entry itself is flushed. A reader therefore sees
either the previous complete file or the new complete file. Temporary names
start with `.partial-`, so readers that look only for the final names never
pick one up, and `remove_partials` clears the ones a killed process left.
"""

import csv
import json
import os
import shutil
import tempfile

PARTIAL_PREFIX = ".partial-"


def fsync_file(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_directory(path):
    """Flushes the directory's entries (new names, renames) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(path):
    """A fresh temporary file name beside `path` that keeps its suffix (Keras
    insists on `.weights.h5`)."""
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = ".weights.h5" if name.endswith(".weights.h5") else os.path.splitext(name)[1]
    fd, tmp = tempfile.mkstemp(prefix=PARTIAL_PREFIX, suffix=suffix, dir=directory)
    os.close(fd)
    return tmp


def commit(tmp, path):
    """Flushes `tmp`, renames it to `path` and flushes the directory."""
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_directory(os.path.dirname(os.path.abspath(path)))


def _write_with(path, write):
    tmp = temporary_path(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        commit(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_weights(model, path):
    """`model.save_weights(path)` (weights and, once built, optimizer state), atomically."""
    _write_with(path, model.save_weights)


def write_json(path, value):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2, sort_keys=True)
    _write_with(path, write)


def write_csv(path, rows):
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "epoch", k))

    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
    _write_with(path, write)


def remove_partials(directory, prefix=PARTIAL_PREFIX):
    """Deletes the temporary files and folders a killed writer left in `directory`."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if name.startswith(prefix):
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
