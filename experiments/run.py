"""Deprecated alias of `python -m din_tf.experiments.run` (same flags)."""

import sys

from absl import app

from din_tf import _command_line
from din_tf.experiments import run as _run

if __name__ == "__main__":
    __doc__ = _run.__doc__  # absl's --help prints the main module's docstring
    print("note: `python -m experiments.run` is deprecated; use "
          "`python -m din_tf.experiments.run` (same flags).", file=sys.stderr)
    app.run(_run.main_reporting_errors, flags_parser=_command_line.parse_flags)
