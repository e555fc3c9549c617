"""Runs several argument lists through one absl command line in one process
(TensorFlow's import costs seconds per process) and prints, as JSON, each
case's exit code, stdout and stderr.

  python -m tests._cli_cases din_tf.experiments.run '[["--help"], ["--epochs=x"]]'

Each case goes through `absl.app.run` with the command's own main and flag
parser, as `python -m <module>` runs it; an exception escaping the command is
printed as the interpreter would print it (a traceback) with exit code 1.
"""

import contextlib
import importlib
import io
import json
import sys
import traceback

from absl import app, flags


def run_cases(module_name, cases):
    module = importlib.import_module(module_name)
    if hasattr(module, "_define_flags"):  # the prepare command defines its flags lazily
        module._define_flags()
    main = getattr(module, "main_reporting_errors", module.main)
    parser = getattr(getattr(module, "_command_line", None), "parse_flags", None)
    results = []
    for argv in cases:
        flags.FLAGS.unparse_flags()
        # absl refuses a second app.run in one process; each case is a fresh run.
        app._register_and_parse_flags_with_usage.done = False
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                if parser is None:
                    app.run(main, argv=[module_name] + argv)
                else:
                    app.run(main, argv=[module_name] + argv, flags_parser=parser)
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:  # noqa: BLE001 - report it as the interpreter would
                traceback.print_exc()
                code = 1
        results.append({"argv": argv, "code": code, "stdout": out.getvalue(),
                        "stderr": err.getvalue()})
    return results


if __name__ == "__main__":
    print("CASES-JSON " + json.dumps(run_cases(sys.argv[1], json.loads(sys.argv[2]))))
