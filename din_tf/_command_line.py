"""What every din_tf command line does on start and exit: a quiet TensorFlow
start-up, `--help` exiting 0, and bad input reported as one `error: ...` line
with exit code 2 instead of a traceback.

Imports only the standard library and absl, so it can run before TensorFlow
is loaded (the C++ log level is read once, when TensorFlow's library loads).
"""

import logging
import os
import re
import sys
import tempfile

from absl import flags

# The programs (`python -m <module>`) that quiet TensorFlow's start-up.
# "experiments.run": the pre-0.2 path, a thin alias of din_tf.experiments.run.
COMMANDS = ("din_tf.data.prepare", "din_tf.experiments.run", "experiments.run")
VERBOSE_FLAG = "verbose_tf"
# 2 hides INFO and WARNING but still prints the `E0000 ... cuInit` lines of a
# CPU-only machine; 3 hides those too (a real failure still raises in Python).
QUIET_LEVEL = "3"
# Lines TensorFlow's native libraries print while loading, before its log
# level applies (oneDNN notice, "Could not find cuda drivers").
_LOADER_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR|[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] .*)$")
_HELP_FLAGS = ("-h", "-help", "--help", "-?", "--helpshort", "-helpshort", "--helpfull",
               "-helpfull", "--helpxml", "-helpxml")


VERBOSE_HELP = ("Show TensorFlow's own log (its C++ start-up INFO, WARNING and CUDA-probe "
                "lines and its Python INFO lines, hidden by default; a TF_CPP_MIN_LOG_LEVEL "
                "you set is kept as it is).")


def quiet_tensorflow_for_commands(argv=None):
    """Quiets TensorFlow's start-up when this process is one of COMMANDS."""
    argv = list(getattr(sys, "orig_argv", []) if argv is None else argv)
    if "-m" in argv[:-1] and argv[argv.index("-m") + 1] in COMMANDS:
        quiet_tensorflow(argv)


def quiet_tensorflow(argv):
    """Sets TF_CPP_MIN_LOG_LEVEL and imports TensorFlow with its loader lines
    filtered out, unless the user set the level or passed --verbose_tf."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or _wants_verbose(argv) or \
            "tensorflow" in sys.modules:
        return False
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_LEVEL
    _import_tensorflow_filtering_loader_lines()
    # TensorFlow's Python INFO lines (SavedModel writing: renamed inputs,
    # sharding callbacks, assets) say nothing a user of these commands needs.
    # Some go through the "tensorflow" logger, some straight through absl's.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    from absl import logging as absl_logging
    absl_logging.get_absl_handler().addFilter(_hide_info_from_tensorflow)
    return True


def _hide_info_from_tensorflow(record):
    """Keeps a log record unless it is below WARNING and from TensorFlow's own
    code (or Keras')."""
    if record.levelno >= logging.WARNING:
        return True
    import keras
    import tensorflow
    return not any(record.pathname.startswith(os.path.dirname(module.__file__) + os.sep)
                   for module in (tensorflow, keras))


def _wants_verbose(argv):
    for arg in argv:
        if arg in (f"--{VERBOSE_FLAG}", f"-{VERBOSE_FLAG}"):
            return True
        if arg.startswith(f"--{VERBOSE_FLAG}="):
            return arg.split("=", 1)[1].lower() in ("true", "1", "t", "yes")
    return False


def _import_tensorflow_filtering_loader_lines():
    # The loader writes to file descriptor 2 from C++, below sys.stderr, so the
    # descriptor itself is pointed at a file for the import and replayed after.
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            import tensorflow  # noqa: F401
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            lines = text.splitlines() if failed else [
                line for line in text.splitlines() if not _LOADER_NOISE.match(line)]
            if lines:
                print("\n".join(lines), file=sys.stderr)


def parse_flags(argv):
    """absl's flag parsing, except that `--help` exits 0 (absl exits 1) and a bad
    flag value is one `error:` line naming the flag, exit code 2."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except SystemExit as e:
        if e.code == 1 and any(arg in _HELP_FLAGS for arg in argv[1:]):
            sys.exit(0)
        raise


def report_errors(main, errors):
    """Wraps an absl `main`: an exception of the `errors` types becomes one
    `error: ...` line on stderr and exit code 2 (the message names the file,
    flag or config key); anything else is a bug and keeps its traceback."""
    def main_reporting_errors(argv):
        try:
            return main(argv)
        except errors as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return main_reporting_errors
