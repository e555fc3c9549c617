"""Writes that a crash (even SIGKILL or a power cut) cannot leave half done.

Every file is written under a temporary name in its final directory, flushed
to disk, then renamed over the final name (a rename within one directory is
atomic), and the directory entry itself is flushed. A reader therefore sees
either the previous complete file or the new complete file. Temporary names
start with `.partial-`, so readers that look only for the final names never
pick one up, and `remove_partials` clears the ones a killed process left.
"""

import csv
import hashlib
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


def write_text(path, text):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    _write_with(path, write)


def write_bytes(path, data):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
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


PREPARED_STAMP = "prepared.json"


def file_identity(path):
    """[absolute path, size, mtime]: what says an input file is unchanged."""
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, int(st.st_mtime)]


def prepared_directory(cache_dir, label, stamp, fill, describe=""):
    """`cache_dir/<label>_<key>`, filled once by `fill(directory)` and reused
    while `stamp` (a JSON-able description of the inputs; key: its hash) is
    unchanged.

    The folder is filled under a `.partial-` name and renamed to the final
    name only after `prepared.json` (the stamp) is written into it, so the
    final folder exists only when complete. A folder without a matching stamp
    (an older version's, or damaged) and the `.partial-` folders of a process
    killed while filling are deleted and filled again."""
    from absl import logging
    key = hashlib.sha1(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:12]
    name = f"{label}_{key}"
    directory = os.path.join(cache_dir, name)
    staging_prefix = f"{PARTIAL_PREFIX}{name}-"
    remove_partials(cache_dir, staging_prefix)
    if _has_stamp(directory, stamp):
        return directory
    if os.path.exists(directory):
        logging.warning("%s is incomplete (no matching %s); preparing it again", directory,
                        PREPARED_STAMP)
        shutil.rmtree(directory)
    logging.info("Preparing %s into %s", describe or label, directory)
    os.makedirs(cache_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=staging_prefix, dir=cache_dir)
    try:
        fill(staging)  # must flush its files to disk before returning
        write_json(os.path.join(staging, PREPARED_STAMP), stamp)  # last: marks it complete
        os.chmod(staging, 0o755)  # mkdtemp creates 0700
        os.rename(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when renamed
    fsync_directory(cache_dir)
    return directory


def _has_stamp(directory, stamp):
    try:
        with open(os.path.join(directory, PREPARED_STAMP), encoding="utf-8") as f:
            return json.load(f) == stamp
    except (OSError, ValueError):
        return False
