"""The runner lives under the package namespace; `experiments` is only a
deprecated alias in the checkout and is never installed."""

import os
import subprocess
import sys

from setuptools import find_packages

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_installed_packages_are_all_under_din_tf():
    # The same include pattern setup.py passes to find_packages.
    with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
        setup_text = f.read()
    assert '"experiments"' not in setup_text
    packages = find_packages(where=REPO, include=["din_tf", "din_tf.*"])
    assert "din_tf.experiments" in packages
    assert all(p == "din_tf" or p.startswith("din_tf.") for p in packages)


def test_old_command_path_still_runs_and_says_where_the_runner_moved():
    result = subprocess.run([sys.executable, "-m", "experiments.run", "--helpshort"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "python -m din_tf.experiments.run" in result.stderr
    assert "--experiment" in result.stdout  # the real runner's flags and help
