"""benchmarks/side_by_side.py's tables: ratios of medians over interleaved
rounds, per model, length and zoo mode; and the +speN mode suffix."""

import pytest

from benchmarks.side_by_side_tables import (
    markdown,
    split_steps_per_execution,
    summarize,
    targets_markdown,
)

# Three rounds of one model at one length: the original and two zoo modes.
ORIGINAL = [100.0, 300.0, 200.0]
FAST = [500.0, 700.0, 900.0]
FAITHFUL = [350.0, 250.0, 300.0]


def _records():
    records = []
    for i in range(3):
        base = {"model": "dien_repo/DIEN", "T": 100, "batch_size": 128, "round": i}
        records.append({**base, "code": "original", "examples_per_s": ORIGINAL[i]})
        records.append({**base, "arm": "fast+xla", "examples_per_s": FAST[i]})
        records.append({**base, "arm": "faithful", "examples_per_s": FAITHFUL[i]})
    return records


def test_ratios_are_of_the_medians_over_rounds():
    (row,) = summarize(_records())
    original = sorted(ORIGINAL)[1]
    assert row["original_median"] == original
    assert row["ratios"]["fast+xla"] == pytest.approx(sorted(FAST)[1] / original)
    assert row["ratios"]["faithful"] == pytest.approx(sorted(FAITHFUL)[1] / original)


def test_markdown_shows_medians_ranges_and_ratios():
    table = markdown(summarize(_records()), ["faithful", "fast+xla"], "header line")
    lines = table.splitlines()
    assert lines[0] == "header line"
    row = lines[-1]
    assert row.startswith("| dien_repo/DIEN | 128 | 100 | 200 (100–300) | 300 (250–350) |")
    assert "**1.50×**" in row and "**3.50×**" in row


@pytest.mark.parametrize("mode, expected", [
    ("faithful+xla", ("faithful+xla", 1)),
    ("faithful+xla+spe16", ("faithful+xla", 16)),
    ("spe4+fast", ("fast", 4)),
])
def test_steps_per_execution_suffix(mode, expected):
    assert split_steps_per_execution(mode) == expected


@pytest.mark.parametrize("mode", ["fast+spe", "fast+spe0", "fast+spe2+spe3"])
def test_bad_steps_per_execution_suffix_names_the_mode(mode):
    with pytest.raises(ValueError, match=mode.replace("+", r"\+")):
        split_steps_per_execution(mode)


def test_targets_table_picks_the_fastest_faithful_mode():
    records = _records()
    for r in [r for r in records if r.get("arm") == "faithful"]:
        records.append({**r, "arm": "faithful+xla", "examples_per_s": r["examples_per_s"] / 2})
    row = targets_markdown(summarize(records)).splitlines()[-1]
    original = sorted(ORIGINAL)[1]
    fast = sorted(FAST)[1]
    assert row == (f"| dien_repo/DIEN | 128 | 100 | {original:,.0f} | faithful | "
                   f"{sorted(FAITHFUL)[1]:,.0f} | **{sorted(FAITHFUL)[1] / original:.2f}×** | "
                   f"{fast:,.0f} | {fast / original:.2f}× |")
