"""benchmarks/roofline.py: its multiply-add inventory against hand counts
(the issue's per-step figures for the originals), one measured run on tiny
shapes, and the report table rendered from its JSON."""

import json

from benchmarks import report, roofline


def _macs(matmuls):
    return sum(m * k * n * count for m, k, n, count, _ in matmuls)


def test_forward_multiply_adds_match_hand_counts():
    # Per example (b=1), T=100; E=H=36, attention 80-40-1, auxiliary 100-50-2.
    gru = 100 * (36 * 108 + 36 * 72 + 36 * 36)                    # 777,600
    aux = 99 * (36 * 100 + 2 * 36 * 100 + 2 * 100 * 50 + 2 * 50 * 2)  # h half once
    attention = 100 * (36 * 80 + 80 * 40 + 40) + 36 * 80          # query folded in
    assert _macs(roofline.forward_matmuls("DIEN", 1, 100)) == 2 * gru + aux + attention
    assert _macs(roofline.forward_matmuls("DIN", 1, 100)) == attention
    # As coded (issue 6: GRU 7.8k, aux 24.6k, attention 14.8k, AUGRU 7.8k per step).
    assert roofline.original_forward_macs("DIEN", 100) == (
        100 * (7_776 + 14_760 + 7_776) + 99 * 24_600)
    assert roofline.original_forward_macs("DIN", 100) == 100 * 14_760


def test_step_is_forward_plus_two_backward_products_per_matmul():
    for model in ("DIEN", "DIN"):
        forward = _macs(roofline.forward_matmuls(model, 8, 7))
        assert _macs(roofline.step_matmuls(model, 8, 7)) == 3 * forward


def test_tiny_run_writes_json_and_report_renders_it(tmp_path):
    lines = []
    data = roofline.measure(batch_size=4, steps=3, repeats=1, log=lines.append)
    roofline.write(data, str(tmp_path / "roofline.json"))
    data = json.loads((tmp_path / "roofline.json").read_text())
    dien = data["models"]["DIEN"]
    # The query term once per row and the shared auxiliary half: fewer FLOPs
    # than the originals' formulation.
    assert dien["flop_per_example"] < dien["flop_per_example_as_coded"]
    assert dien["matmul_floor_step_s"] > 0 and data["peak_2048_gflops"] > 0
    assert set(dien["parts"]) == {"gru", "gru-step", "auxiliary", "attention", "augru",
                                  "augru-step"}
    assert any("matmul floor" in line for line in lines)
    table = report.roofline_table(str(tmp_path))
    assert "| DIEN | **all matmuls** |" in table and "| DIN | attention |" in table
