"""din_tf's benchmarks (docs/benchmarks.md). Run each from the repository root
as `python -m benchmarks.NAME` (`--help` lists its flags). A script defines its
absl flags only when it runs, so any of these modules imports next to the
others in one process. Standard library only here: the children some scripts
start in other virtualenvs import this package too."""

import os

# The checkout's root: where `python -m benchmarks.NAME` children start.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_path(path):
    """A path flag as a child started in REPO must get it: absolute ("" if unset)."""
    return os.path.abspath(path) if path else ""
