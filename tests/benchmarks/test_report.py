"""benchmarks/report.py: the training-throughput tables rendered from JSON."""

import json

from benchmarks import report


HEADER = ("B={}, {} (examples/s; × the original code where it was measured; "
          "† the figure of docs/original_code.md#throughput-of-the-original-code):")


def _record(model, t, mode, ex_s, batch=128, jit=False, mp=False):
    return {"model": model, "T": t, "mode": mode, "batch_size": batch, "jit_compile": jit,
            "mixed_precision": mp, "median_step_s": batch / ex_s, "examples_per_s": ex_s}


def test_one_wide_table_per_batch_size_and_xla_with_ratios_to_the_original(tmp_path):
    records = [
        _record("dien_repo/DIEN", 100, "faithful", 222.0),
        _record("dien_repo/DIEN", 100, "fast", 888.0),
        _record("dien_repo/DIEN", 10, "fast", 2324.0, jit=True),
        _record("dien_repo/DNN", 100, "fast", 5000.0),
        _record("din_repo/din", 100, "faithful", 4128.0, batch=32, jit=True),
        _record("dien_repo/DIN", 100, "fast", 2270.0, mp=True),
    ]
    (tmp_path / "train_throughput_a.json").write_text(json.dumps(records[:4]))
    (tmp_path / "train_throughput_b.json").write_text(json.dumps(records[4:]))
    lines = report.training_tables(str(tmp_path)).splitlines()
    no_xla = lines.index(HEADER.format(128, "no XLA"))
    assert lines[no_xla + 2] == "| model | T=100 faithful | T=100 fast |"
    # 444 and 1,162 ex/s: the original DIEN at T=100 and T=10
    # (docs/original_code.md#throughput-of-the-original-code).
    assert lines[no_xla + 4] == "| dien_repo/DIEN | 222 (0.50×†) | 888 (2.00×†) |"
    assert lines[no_xla + 5] == "| dien_repo/DNN | – | 5,000 |"
    xla = lines.index(HEADER.format(128, "XLA"))
    assert lines[xla + 4] == "| dien_repo/DIEN | 2,324 (2.00×†) |"
    # The DIN repo's DIN is compared at its own batch size (2,064 ex/s at B=32).
    b32 = lines.index(HEADER.format(32, "XLA"))
    assert lines[b32 + 4] == "| din_repo/din | 4,128 (2.00×†) |"
    assert "| dien_repo/DIN | 100 | fast | no | 128 | 2,270 | 56.4 | 2.00×† |" in lines


def test_originals_measured_here_replace_the_published_figures(tmp_path):
    originals = [
        {"model": "dien_repo/DIEN", "T": 100, "batch_size": 128, "code": "original",
         "median_step_s": 0.32, "examples_per_s": 400.0},
        {"model": "dien_repo/DIEN", "T": 100, "batch_size": 128, "code": "original",
         "median_step_s": 0.27, "examples_per_s": 480.0},
        {"model": "din_repo/pnn", "T": 10, "batch_size": 32, "code": "original",
         "median_step_s": 0.004, "examples_per_s": 8000.0},
    ]
    (tmp_path / "original_throughput_1.json").write_text(json.dumps(originals))
    records = [_record("dien_repo/DIEN", 100, "fast", 880.0),
               _record("dien_repo/DIEN", 10, "fast", 2324.0),
               _record("din_repo/pnn", 10, "faithful", 4000.0, batch=32),
               _record("din_repo/pnn", 10, "faithful", 4000.0)]
    (tmp_path / "train_throughput.json").write_text(json.dumps(records))
    lines = report.training_tables(str(tmp_path)).splitlines()
    assert "| dien_repo/DIEN | 128 | 100 | 2 | 440; 400–480 |" in lines
    assert "| din_repo/pnn | 32 | 10 | 1 | 8,000 |" in lines
    no_xla = lines.index(HEADER.format(128, "no XLA"))
    # Columns: T=10 faithful, T=10 fast, T=100 fast. T=100 against the mean
    # of the two runs here (440); T=10 was not run here, so the 1,162 ex/s of
    # docs/original_code.md#throughput-of-the-original-code; no original at
    # B=128 for the pnn.
    assert lines[no_xla + 2] == "| model | T=10 faithful | T=10 fast | T=100 fast |"
    assert lines[no_xla + 4] == "| dien_repo/DIEN | – | 2,324 (2.00×†) | 880 (2.00×) |"
    assert lines[no_xla + 5] == "| din_repo/pnn | 4,000 | – | – |"
    b32 = lines.index(HEADER.format(32, "no XLA"))
    assert lines[b32 + 4] == "| din_repo/pnn | 4,000 (0.50×) |"


def test_mixed_lengths_are_compared_with_deepctr(tmp_path):
    record = dict(_record("dien_repo/DIEN", "uniform 1-100", "fast", 1500.0),
                  buckets=[10, 100], mean_padded_length=56.2)
    (tmp_path / "train_throughput_mix.json").write_text(json.dumps([record]))
    table = report.training_tables(str(tmp_path))
    assert "| dien_repo/DIEN | uniform 1-100 | 10,100 | fast | no | 56.2 | 1,500 | 2.00× |" in table


def test_no_results_no_tables(tmp_path):
    assert report.training_tables(str(tmp_path)) == ""
