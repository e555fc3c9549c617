"""benchmarks/ps_throughput.py without a cluster: the bytes-per-step estimate
against a hand count, the WORKERSxPS configurations and their errors, the
loopback counter's parsing, and bad flags refused before anything starts."""

import subprocess
import sys

import pytest

from benchmarks import ps_throughput as ps

PROC_NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
  eth0:     900       9    0    0    0     0          0         0      800       8    0    0    0     0       0          0
    lo: 1323040357  571228    0    0    0     0          0         0 1323040350  571228    0    0    0     0       0          0
"""


def test_estimate_matches_a_hand_count():
    # Table a: 100 rows of width 18: 100 x 18 x 4 read, the same written, 100 x 8 indices.
    # Table b: 50 rows of width 4. Dense: 1,000 floats read and 1,000 gradients sent.
    estimate = ps.estimate_bytes_per_step({"a": (100, 18), "b": (50, 4)}, 1_000)
    assert estimate["tables"] == {"a": 7_200 + 7_200 + 800, "b": 800 + 800 + 400}
    assert estimate["dense"] == 8_000
    assert estimate["total"] == 15_200 + 2_000 + 8_000


def test_estimate_of_dien_repo_din_shapes():
    # B=128, T=100: 128 users; the item table read by 128 + 12,800 ids, the
    # category table by as many (1,600 distinct categories at most).
    estimate = ps.estimate_bytes_per_step(
        {"uid": (128, 18), "mid": (12_928, 18), "cat": (1_600, 18)}, 0)
    assert estimate["total"] == (128 + 12_928 + 1_600) * (2 * 4 * 18 + 8)


@pytest.mark.parametrize("tables, dense", [({"a": (-1, 18)}, 0), ({"a": (1, 0)}, 0),
                                           ({}, -5)])
def test_estimate_refuses_impossible_sizes(tables, dense):
    with pytest.raises(ValueError, match="Invalid"):
        ps.estimate_bytes_per_step(tables, dense)


@pytest.mark.parametrize("token, expected", [("1x1", (1, 1)), ("2x1", (2, 1)),
                                             (" 1X2 ", (1, 2)), ("12x3", (12, 3))])
def test_config_is_workers_by_parameter_servers(token, expected):
    assert ps.parse_config(token) == expected


@pytest.mark.parametrize("token, message", [
    ("2by1", "expected WORKERSxPS"), ("x1", "expected WORKERSxPS"), ("", "expected WORKERSxPS"),
    ("2x1x1", "expected WORKERSxPS"), ("-1x1", "expected WORKERSxPS"),
    ("0x1", "at least one worker"), ("1x0", "at least one worker")])
def test_bad_config_is_named(token, message):
    with pytest.raises(ValueError, match=rf"Invalid config '{token}'.*{message}"):
        ps.parse_config(token)


def test_configs_in_order_and_a_repeated_one_refused():
    assert ps.parse_configs(["1x1", "2x1", "1x2", "2x2"]) == [(1, 1), (2, 1), (1, 2), (2, 2)]
    with pytest.raises(ValueError, match="config '1X1' is given twice"):
        ps.parse_configs(["1x1", "1X1"])
    with pytest.raises(ValueError, match="no configuration"):
        ps.parse_configs([])


def test_cluster_spec_names_chief_workers_then_parameter_servers():
    assert ps.cluster_spec(2, 1, [10, 11, 12, 13]) == {
        "chief": ["127.0.0.1:10"], "worker": ["127.0.0.1:11", "127.0.0.1:12"],
        "ps": ["127.0.0.1:13"]}
    assert len(set(ps.free_ports(3))) == 3


def test_loopback_counters_are_read_from_proc_net_dev():
    assert ps.loopback_bytes(PROC_NET_DEV) == (1_323_040_357, 1_323_040_350)
    with pytest.raises(ValueError, match="no 'lo'"):
        ps.loopback_bytes(PROC_NET_DEV.replace("    lo:", "  eth1:"))
    received, sent = ps.read_loopback_bytes()
    assert received >= 0 and sent >= 0


def test_run_line_gives_throughput_and_both_byte_counts():
    record = {"config": "2x1", "model": "dien_repo/DIN", "examples_per_s": 1234.4,
              "measured_bytes_per_step": 4_530_000, "estimate": {"total": 2_710_000},
              "estimate_with_repeated_rows": {"total": 4_460_000}}
    assert ps.run_line(record) == ("2x1   dien_repo/DIN        1234 ex/s  measured     4.53 "
                                   "MB/step  estimated   2.71 MB/step (4.46 with repeated rows)")
    failed = {"config": "1x1", "model": "dien_repo/DIN", "error": "timed out\nlog"}
    assert ps.run_line(failed).endswith("FAILED: timed out")


@pytest.mark.parametrize("flag, message", [
    ("--configs=1x1,2by1", "--configs: Invalid config '2by1'"),
    ("--configs=1x1,1x1", "--configs: config '1x1' is given twice"),
    ("--models=dien_repo/DNN", "--models: ['dien_repo/DNN']"),
    ("--steps=6", "--steps=6 is not a multiple of --steps_per_execution=4"),
])
def test_bad_flags_are_usage_errors_naming_them(tmp_path, flag, message):
    out = tmp_path / "never.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.ps_throughput", flag,
                           f"--output={out}"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()
