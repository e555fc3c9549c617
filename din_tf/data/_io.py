"""File plumbing shared by every reader and writer: opening plain or gzip text,
line-numbered parsing with a uniform error, and all-or-nothing output."""

import contextlib
import gzip
import os
import shutil
import tempfile
import warnings
import zlib

from absl import logging

from din_tf._pause_for_kill_test import pause_if_requested

_GZIP_MAGIC = b"\x1f\x8b"
PROGRESS_EVERY = 1_000_000


class DataFormatError(ValueError):
    """A data file does not have the expected format.

    Carries `path` and `line_number` (1-based; None for whole-file problems).
    """

    def __init__(self, path, line_number, message):
        self.path = os.fspath(path)
        self.line_number = line_number
        where = self.path if line_number is None else f"{self.path}, line {line_number}"
        super().__init__(f"{where}: {message}")


def describe(value, limit=80):
    """Short repr of a received value for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def open_binary(path):
    """Opens `path` for reading bytes, decompressing gzip by content (not by name,
    so `reviews_X_5.json` that is really gzip still works)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def iter_lines(path, encoding="utf-8", progress_every=PROGRESS_EVERY):
    """Yields `(line_number, text)` with the newline stripped. Undecodable bytes are
    a `DataFormatError` naming the line. Logs progress every `progress_every` lines."""
    with open_binary(path) as f:
        for number, raw in enumerate(_lines_naming_damage(f, path), start=1):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as e:
                raise DataFormatError(path, number, f"not valid {encoding} text ({e})") from None
            if progress_every and number % progress_every == 0:
                logging.info("%s: read %d lines", path, number)
            yield number, text.rstrip("\r\n")


def _lines_naming_damage(f, path):
    """The lines of `f`; a truncated or corrupt gzip stream (EOFError, zlib or
    gzip errors, which name neither file nor place) becomes a DataFormatError
    naming the file and the first line that could not be read."""
    lines = iter(f)
    number = 0
    while True:
        try:
            raw = next(lines)
        except StopIteration:
            return
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise DataFormatError(path, number + 1, f"the file is truncated or corrupt; could "
                                                    f"not read this line ({e})") from None
        number += 1
        yield raw


class MalformedLines:
    """Policy for lines that fail to parse: raise (default) or skip and count.

    Use as `with MalformedLines(path, skip) as bad: ... bad.handle(number, message)`;
    on exit, skipped lines are reported in one `UserWarning` (and the log).
    """

    def __init__(self, path, skip=False):
        self.path = os.fspath(path)
        self.skip = skip
        self.count = 0
        self.first = None

    def handle(self, line_number, message):
        if not self.skip:
            raise DataFormatError(self.path, line_number, message)
        self.count += 1
        if self.first is None:
            self.first = (line_number, message)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self.count:
            number, message = self.first
            text = (f"{self.path}: skipped {self.count} malformed line(s); first at line "
                    f"{number}: {message}")
            logging.warning(text)
            warnings.warn(text, UserWarning, stacklevel=3)
        return False


def require_nonempty(path, count, what="records"):
    if count == 0:
        raise DataFormatError(path, None, f"no {what} found (empty file, or every line was skipped)")


@contextlib.contextmanager
def atomic_output_dir(output_dir):
    """Yields a temporary directory to write the outputs into; nothing appears
    at `output_dir` unless the block finishes.

    A new `output_dir` is staged as a `.partial-` sibling and renamed into
    place as a whole, so it exists only when complete. Into an existing
    directory each file is moved by an atomic rename (a crash between moves
    can leave some of the new files). Files are flushed to disk before they
    are renamed. On failure the staging directory is deleted."""
    output_dir = os.path.abspath(os.fspath(output_dir))
    parent, name = os.path.split(output_dir)
    whole = not os.path.exists(output_dir)
    if whole:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".partial-{name}-", dir=parent)
    else:
        staging = tempfile.mkdtemp(prefix=".partial-", dir=output_dir)
    try:
        yield staging
        for file_name in os.listdir(staging):
            _fsync(os.path.join(staging, file_name))
        pause_if_requested("prepare_output", staging)
        if whole:
            _fsync(staging)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(staging, 0o777 & ~umask)  # mkdtemp creates 0700; give the usual mode
            os.rename(staging, output_dir)
            _fsync(parent)
        else:
            for file_name in sorted(os.listdir(staging)):
                os.replace(os.path.join(staging, file_name), os.path.join(output_dir, file_name))
            _fsync(output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fsync(path):
    """Flushes a file's data, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode="w", **kwargs):
    """Opens a temporary file beside `path` and renames it to `path` only if the
    block finishes; gzip is used when `path` ends with `.gz`."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=directory)
    os.close(fd)
    try:
        if path.endswith(".gz"):
            # mtime=0 keeps the bytes reproducible for the committed dataset.
            raw = open(tmp, "wb")
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0)
            f = gz if "b" in mode else _TextOverBinary(gz, kwargs.get("encoding", "utf-8"))
            try:
                yield f
            finally:
                gz.close()
                raw.close()
        else:
            if "b" not in mode:
                kwargs.setdefault("encoding", "utf-8")
                kwargs.setdefault("newline", "\n")
            with open(tmp, mode, **kwargs) as f:
                yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class _TextOverBinary:
    def __init__(self, f, encoding):
        self._f = f
        self._encoding = encoding

    def write(self, text):
        return self._f.write(text.encode(self._encoding))
