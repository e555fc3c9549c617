"""benchmarks/ is one package, imported one way (`from benchmarks import x`,
scripts run as `python -m benchmarks.x`): every module imports next to every
other in one process without defining an absl flag, and no script edits
sys.path except to load the original TF1 code."""

import json
import os
import pkgutil
import subprocess
import sys

import benchmarks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__))

# A fresh process: in this one, other tests may have imported some already.
IMPORT_ALL = """
import importlib, json, sys
from absl import flags
for name in sys.argv[1:]:
    importlib.import_module("benchmarks." + name)
print(json.dumps({module: [f.name for f in defined]
                  for module, defined in flags.FLAGS.flags_by_module_dict().items()
                  if module.startswith("benchmarks")}))
"""


def test_every_benchmark_module_imports_in_one_process_defining_no_flag():
    assert {"train_throughput", "original_throughput", "attention_fold_ab", "serving",
            "side_by_side"} <= set(NAMES)
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL, *NAMES], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}


def test_only_original_throughput_touches_sys_path():
    touching = []
    for name in NAMES:
        with open(os.path.join(ROOT, "benchmarks", f"{name}.py"), encoding="utf-8") as f:
            if "sys.path" in f.read():
                touching.append(name)
    assert touching == ["original_throughput"]  # its load_original runs the TF1 sources
