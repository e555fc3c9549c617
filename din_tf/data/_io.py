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
    """Yields a temporary directory next to `output_dir`; on success every file in
    it is moved into `output_dir` (each move is an atomic rename), on failure the
    temporary directory is deleted so no partial outputs are left behind."""
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".partial-", dir=output_dir)
    try:
        yield staging
        for name in sorted(os.listdir(staging)):
            os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
