"""din_tf.experiments.atomic_files' JSON and text writers (the runner's and the
benchmarks'): a file is replaced whole, readable by others (mkstemp makes
0600 files), and no temporary file is left beside it."""

import json
import os
import stat

import pytest

from din_tf.experiments import atomic_files


@pytest.mark.parametrize("write, read, first, second", [
    (atomic_files.write_json, lambda p: json.loads(p.read_text()), {"a": [1, 2]}, {"a": [3]}),
    (atomic_files.write_text, lambda p: p.read_text(), "| a |\n", "| b |\n"),
], ids=["json", "text"])
def test_replaces_the_whole_file_with_no_temporary_left(tmp_path, write, read, first, second):
    path = tmp_path / "new_folder" / "out"
    write(str(path), first)
    write(str(path), second)
    assert read(path) == second
    assert os.listdir(path.parent) == ["out"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
