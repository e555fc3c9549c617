"""Test-only: lets a test SIGKILL this process at one exact point.

Crash-safety tests need to kill a run while it is, say, half-way through
writing a file; timing a kill from outside cannot hit such a window reliably.
Writers therefore call `pause_if_requested(point, detail)` at the risky spot.
Outside tests the environment variable is unset and the call returns at once.

When `DIN_TF_PAUSE_FOR_KILL_TEST` equals `point`, the process writes `detail`
(e.g. the path of the file it is writing) to the file named by
`DIN_TF_PAUSE_MARKER`, then sleeps until it is killed.
"""

import os
import time

POINT_VARIABLE = "DIN_TF_PAUSE_FOR_KILL_TEST"
MARKER_VARIABLE = "DIN_TF_PAUSE_MARKER"


def requested(point):
    """True when a test asked this process to stop at `point`."""
    return os.environ.get(POINT_VARIABLE) == point


def pause_if_requested(point, detail=""):
    if not requested(point):
        return
    marker = os.environ.get(MARKER_VARIABLE)
    if not marker:
        raise RuntimeError(f"{POINT_VARIABLE}={point!r} is set but {MARKER_VARIABLE} is not; "
                           "expected the path of the marker file the test waits for.")
    with open(marker + ".tmp", "w", encoding="utf-8") as f:
        f.write(detail)
    os.replace(marker + ".tmp", marker)  # the test never reads a half-written marker
    while True:  # until the test's SIGKILL
        time.sleep(60)
