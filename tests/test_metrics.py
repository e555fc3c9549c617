"""Metrics: docs/original_code.md#evaluation (evaluation of both repos, golden
values in docs/original_code.md#the-metric-functions; the DIN repo's "GAUC" is
a pair accuracy, not the paper's GAUC)."""

import os
import re
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from din_tf import metrics
from din_tf.metrics import (
    DinRepoGAUC,
    ExactAUC,
    dien_calc_auc,
    dinrepo_calc_auc,
    dinrepo_gauc,
    exact_auc,
    gauc,
    rela_impr,
)
from tests.conftest import GOLDEN_DIR, GOLDEN_VARIANTS, golden_variant, load_golden


def _pairwise_auc(labels, scores):
    """Brute-force Mann-Whitney over all (positive, negative) pairs."""
    pos = scores[labels == 1][:, None]
    neg = scores[labels == 0][None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def _tied_data(seed, n=300):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(np.float32)
    scores = (rng.integers(0, 40, n) / 40.0).astype(np.float32)  # many ties
    return labels, scores


# ------------------------------- golden (docs/original_code.md#the-metric-functions)


GOLDEN_AUC_KEYS = {exact_auc: "out/exact_auc_ties_half", dien_calc_auc: "out/dien_calc_auc",
                   dinrepo_calc_auc: "out/dinrepo_calc_auc"}


def _dien_calc_auc_as_coded(labels, scores):
    """DIEN `script/utils.py: calc_auc` line for line (the regenerated file's reference)."""
    records = sorted(zip(scores, labels), key=lambda d: d[0], reverse=True)  # stable
    pos = sum(1.0 for _, y in records if y == 1.0)
    neg = len(records) - pos
    fp = tp = 0.0
    points = []
    for _, y in records:
        if y == 1.0:
            tp += 1
        else:
            fp += 1
        points.append((fp / neg, tp / pos))
    auc = prev_x = prev_y = 0.0
    for x, y in points:
        if x != prev_x:
            auc += (x - prev_x) * (y + prev_y) / 2.0
            prev_x, prev_y = x, y
    return auc


def _dinrepo_calc_auc_as_coded(labels, scores):
    """DIN `din/train.py: calc_auc` line for line (the regenerated file's reference)."""
    records = sorted(zip(1.0 - labels, labels, scores), key=lambda d: d[2])
    auc = fp1 = tp1 = fp2 = tp2 = 0.0
    for noclick, click, _ in records:
        fp2 += noclick
        tp2 += click
        auc += (fp2 - fp1) * (tp2 + tp1)
        fp1, tp1 = fp2, tp2
    return 1.0 - auc / (2.0 * tp2 * fp2)


def _write_regenerated_auc_file(directory, n=57, seed=21):
    """A metrics file laid out like the stored one but with another N, its
    expected values from the loops above and brute-force Mann-Whitney."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(np.float64)
    scores = np.round(rng.random(n), 1)  # one decimal: many ties
    np.savez(os.path.join(directory, "metrics_and_prepare_data.npz"), **{
        "in/labels": labels, "in/scores": scores,
        "out/exact_auc_ties_half": np.float64(_pairwise_auc(labels, scores)),
        "out/dien_calc_auc": np.float64(_dien_calc_auc_as_coded(labels, scores)),
        "out/dinrepo_calc_auc": np.float64(_dinrepo_calc_auc_as_coded(labels, scores)),
    })


@pytest.fixture(params=GOLDEN_VARIANTS)
def auc_golden(request, tmp_path):
    return golden_variant(request.param, "metrics_and_prepare_data", _write_regenerated_auc_file, tmp_path)


@pytest.mark.parametrize("function", list(GOLDEN_AUC_KEYS), ids=lambda f: f.__name__)
def test_golden_auc_functions(function, auc_golden):
    z = auc_golden
    value = function(z["in/labels"], z["in/scores"])
    assert isinstance(value, float)
    np.testing.assert_allclose(value, z[GOLDEN_AUC_KEYS[function]], atol=1e-9)


def test_regenerated_auc_file_has_other_shapes_and_faithful_references(tmp_path):
    _write_regenerated_auc_file(str(tmp_path))
    regenerated = load_golden("metrics_and_prepare_data", directory=str(tmp_path))
    stored = load_golden("metrics_and_prepare_data")
    assert regenerated["in/labels"].shape != stored["in/labels"].shape
    assert all(regenerated[k] != stored[k] for k in GOLDEN_AUC_KEYS.values())
    # The references that fill the regenerated file give the stored values too.
    labels, scores = stored["in/labels"], stored["in/scores"]
    for reference, key in ((_pairwise_auc, "out/exact_auc_ties_half"),
                           (_dien_calc_auc_as_coded, "out/dien_calc_auc"),
                           (_dinrepo_calc_auc_as_coded, "out/dinrepo_calc_auc")):
        np.testing.assert_allclose(reference(labels, scores), stored[key], atol=1e-9, err_msg=key)


def test_golden_values_are_the_documented_ones():
    """SOURCE_README.md documents each stored AUC as `out/<key>` = <value>."""
    z = load_golden("metrics_and_prepare_data")
    with open(os.path.join(GOLDEN_DIR, "SOURCE_README.md"), encoding="utf-8") as f:
        documented = dict(re.findall(r"`(out/\w+)`\s*\(?=\s*([0-9.]+)", f.read()))
    for key in GOLDEN_AUC_KEYS.values():
        assert key in documented, key
        np.testing.assert_allclose(z[key], float(documented[key]), atol=1e-6, err_msg=key)


# ---------------------------------------------------------- hand-computed cases

# Pairs: (0.9+ vs 0.9-) tie, (0.9+ vs 0.1-) win, (0.3+ vs 0.9-) loss, (0.3+ vs 0.1-) win.
TIE_LABELS = [1, 0, 1, 0]
TIE_SCORES = [0.9, 0.9, 0.3, 0.1]


def test_exact_auc_hand_computed_with_ties():
    assert exact_auc(TIE_LABELS, TIE_SCORES) == pytest.approx(2.5 / 4, abs=1e-12)
    assert exact_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5, abs=1e-12)
    assert exact_auc([1, 1, 0], [0.2, 0.7, 0.4]) == pytest.approx(0.5, abs=1e-12)
    # Weights scale the pairs: the tie pair gets 3·1, the 0.9-vs-0.1 pair 3·2, ...
    weighted = exact_auc(TIE_LABELS, TIE_SCORES, sample_weight=[3, 1, 1, 2])
    assert weighted == pytest.approx((3 * 1 * 0.5 + 3 * 2 + 0 + 1 * 2) / (4 * 3), abs=1e-12)


def test_dien_calc_auc_hand_computed():
    # Descending: 0.9+ 0.9- 0.3+ 0.1-; TPR at the negatives 0.5, 1.0;
    # trapezoids 0.5·(0.5+0)/2 + 0.5·(1+0.5)/2.
    assert dien_calc_auc(TIE_LABELS, TIE_SCORES) == pytest.approx(0.5, abs=1e-12)
    # A tie is resolved by input order: the negative first now.
    assert dien_calc_auc([0, 1, 1, 0], TIE_SCORES) == pytest.approx(0.25, abs=1e-12)
    # Perfect ranking: 1 - 1/(2N), the documented bias.
    assert dien_calc_auc([1, 1, 0, 0], [0.9, 0.8, 0.7, 0.6]) == pytest.approx(0.75, abs=1e-12)


def test_dinrepo_calc_auc_hand_computed():
    # Ascending: 0.1- 0.3+ 0.9+ 0.9-; the last negative has 2 positives
    # sorted before it, so 1 - 2/(2·2).
    assert dinrepo_calc_auc(TIE_LABELS, TIE_SCORES) == pytest.approx(0.5, abs=1e-12)
    # Negative first among the tied pair: it is counted as correct.
    assert dinrepo_calc_auc([0, 1, 1, 0], TIE_SCORES) == pytest.approx(0.75, abs=1e-12)
    assert dinrepo_calc_auc([1, 1, 0, 0], [0.9, 0.8, 0.7, 0.6]) == pytest.approx(1.0, abs=1e-12)


def test_dinrepo_calc_auc_returns_minus_half_for_one_class():
    assert dinrepo_calc_auc([1, 1, 1], [0.1, 0.2, 0.3]) == -0.5
    assert dinrepo_calc_auc([0], [0.4]) == -0.5


def test_dinrepo_gauc_hand_computed_ties_are_wrong():
    assert dinrepo_gauc([0.9, 0.5, 0.2], [0.1, 0.5, 0.3]) == pytest.approx(1 / 3, abs=1e-12)
    assert dinrepo_gauc([[2.0], [1.0]], [[-1.0], [0.5]]) == pytest.approx(1.0, abs=1e-12)


def test_gauc_hand_computed():
    # User "a": AUC 1/2. User "b": positives tied with one negative -> (1.5 + 1.5)/4.
    # User "c" has only clicks and is skipped. Rows are interleaved on purpose.
    users = np.array(["a", "b", "c", "a", "b", "c", "b", "a", "b"])
    labels = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0])
    scores = np.array([0.8, 0.5, 0.1, 0.3, 0.5, 0.9, 0.5, 0.9, 0.1])
    assert gauc(users, labels, scores) == pytest.approx((3 * 0.5 + 4 * 0.75) / 7, abs=1e-12)
    # Click-weighted variant: per-row weights summed per user (a: 1, b: 2).
    assert gauc(users, labels, scores, weights=labels) == pytest.approx((0.5 + 2 * 0.75) / 3, abs=1e-12)


def test_rela_impr_hand_computed():
    assert rela_impr(0.7, 0.6) == pytest.approx(100.0, abs=1e-9)
    assert rela_impr(0.55, 0.6) == pytest.approx(-50.0, abs=1e-9)
    # DIN+Dice vs BaseModel as reported in the DIN repo logs
    # (docs/original_code.md#published-numbers).
    assert rela_impr(0.8711, 0.8624) == pytest.approx((0.3711 / 0.3624 - 1) * 100, abs=1e-9)


# ------------------------------------------------------------------ properties


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_auc_matches_brute_force(seed):
    labels, scores = _tied_data(seed)
    assert exact_auc(labels, scores) == pytest.approx(_pairwise_auc(labels, scores), abs=1e-12)


def test_exact_auc_invariant_to_monotone_transforms_and_row_order():
    labels, scores = _tied_data(3)
    scores = scores.astype(np.float64) * 0.98 + 0.01  # keep logit finite
    reference = exact_auc(labels, scores)
    for transformed in (np.log(scores / (1 - scores)), scores**3, 10 * scores - 4, np.exp(scores)):
        assert exact_auc(labels, transformed) == pytest.approx(reference, abs=1e-12)
    perm = np.random.default_rng(4).permutation(len(labels))
    assert exact_auc(labels[perm], scores[perm]) == pytest.approx(reference, abs=1e-12)
    # A decreasing transform mirrors the AUC.
    assert exact_auc(labels, -scores) == pytest.approx(1 - reference, abs=1e-12)


def test_calc_aucs_closed_forms_for_distinct_scores():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 500).astype(float)
    scores = rng.permutation(500) / 500.0
    exact = exact_auc(labels, scores)
    assert dinrepo_calc_auc(labels, scores) == pytest.approx(exact, abs=1e-12)
    # DIEN: exact - y_N / (2N), y_N = TPR at the lowest-scored negative.
    num_neg = int((labels == 0).sum())
    lowest_neg = scores[labels == 0].min()
    tpr_at_lowest = np.mean(scores[labels == 1] > lowest_neg)
    assert dien_calc_auc(labels, scores) == pytest.approx(exact - tpr_at_lowest / (2 * num_neg), abs=1e-12)


def test_calc_aucs_with_ties_follow_input_order():
    """With ties, both repos count a pair by which record comes first in
    the input (docs/original_code.md#evaluation-in-the-din-repo,
    docs/original_code.md#evaluation-in-the-dien-repo); check against that
    pairwise definition."""
    labels, scores = _tied_data(6, n=200)
    labels, scores = labels.astype(float), scores.astype(float)
    index = np.arange(len(labels))
    pos, neg = labels == 1, labels == 0
    pos_first = index[pos][:, None] < index[neg][None, :]
    higher = scores[pos][:, None] > scores[neg][None, :]
    tied = scores[pos][:, None] == scores[neg][None, :]
    # DIN repo (ascending): a tied pair is correct iff the negative comes first.
    din_pairs = np.mean(higher | (tied & ~pos_first))
    assert dinrepo_calc_auc(labels, scores) == pytest.approx(din_pairs, abs=1e-12)
    # DIEN (descending): a tied pair is correct iff the positive comes first,
    # then the trapezoid bias -y_N/(2N).
    dien_correct = higher | (tied & pos_first)
    order = np.argsort(-scores, kind="stable")
    last_neg = order[labels[order] == 0][-1]  # the lowest-ranked negative
    tpr_at_last = dien_correct[:, np.searchsorted(np.flatnonzero(neg), last_neg)].mean()
    expected = dien_correct.mean() - tpr_at_last / (2 * neg.sum())
    assert dien_calc_auc(labels, scores) == pytest.approx(expected, abs=1e-12)


def test_gauc_of_one_user_is_exact_auc():
    labels, scores = _tied_data(7)
    users = np.full(len(labels), 42)
    assert gauc(users, labels, scores) == pytest.approx(exact_auc(labels, scores), abs=1e-12)


def test_gauc_matches_per_user_loop():
    rng = np.random.default_rng(8)
    users = rng.integers(0, 30, 600)
    labels = rng.integers(0, 2, 600)
    scores = rng.integers(0, 10, 600) / 10.0
    weights = rng.random(600)
    numerator = denominator = numerator_w = denominator_w = 0.0
    for user in np.unique(users):
        rows = users == user
        if 0 < labels[rows].sum() < rows.sum():
            auc = _pairwise_auc(labels[rows], scores[rows])
            numerator += rows.sum() * auc
            denominator += rows.sum()
            numerator_w += weights[rows].sum() * auc
            denominator_w += weights[rows].sum()
    assert gauc(users, labels, scores) == pytest.approx(numerator / denominator, abs=1e-12)
    assert gauc(users, labels, scores, weights=weights) == pytest.approx(numerator_w / denominator_w, abs=1e-12)


def test_gauc_with_one_pair_per_user_equals_dinrepo_gauc():
    rng = np.random.default_rng(9)
    pos, neg = rng.random(50), rng.random(50)
    users = np.concatenate([np.arange(50), np.arange(50)])
    labels = np.concatenate([np.ones(50), np.zeros(50)])
    value = gauc(users, labels, np.concatenate([pos, neg]))
    assert value == pytest.approx(dinrepo_gauc(pos, neg), abs=1e-12)
    assert value == pytest.approx(np.mean(pos > neg), abs=1e-12)


def test_gauc_million_rows_is_fast_and_exact():
    rng = np.random.default_rng(10)
    n = 1_000_000
    users = rng.integers(0, 200_000, n)
    labels = rng.integers(0, 2, n)
    scores = labels + 0.5 * rng.random(n)  # every user perfectly ranked
    scores[::2] = 0.25 + labels[::2] * 0.5  # plus many ties, still ranked
    start = time.perf_counter()
    value = gauc(users, labels, scores)
    elapsed = time.perf_counter() - start
    assert value == pytest.approx(1.0, abs=1e-12)
    assert elapsed < 5.0, f"gauc took {elapsed:.2f} s for 1e6 rows"


def test_rela_impr_of_base_against_itself_is_zero():
    for auc in (0.1, 0.6, 0.8624, 1.0):
        assert rela_impr(auc, auc) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------- Keras metrics


@pytest.mark.parametrize("resort_threshold", [1, 150, 10**6])
def test_exact_auc_metric_streams_to_exact_value(resort_threshold):
    """Covers a re-sort after every batch, a few re-sorts, and none."""
    labels, scores = _tied_data(11, n=1000)
    weights = np.random.default_rng(11).random(1000).astype(np.float32)
    plain = ExactAUC(capacity=1000, resort_threshold=resort_threshold, dtype="float64")
    dien_layout = ExactAUC(capacity=1000, resort_threshold=resort_threshold, dtype="float64")
    for start in range(0, 1000, 64):
        rows = slice(start, start + 64)
        plain.update_state(labels[rows], scores[rows])
        dien_layout.update_state(
            np.stack([labels[rows], 1 - labels[rows]], axis=1),
            np.stack([scores[rows], 1 - scores[rows]], axis=1),
            sample_weight=weights[rows, None],
        )
    assert float(plain.result()) == pytest.approx(exact_auc(labels, scores), abs=1e-12)
    assert float(dien_layout.result()) == pytest.approx(
        exact_auc(labels, scores, sample_weight=weights), abs=1e-9
    )


def test_exact_auc_metric_in_tf_function_against_exact_auc():
    rng = np.random.default_rng(12)
    labels = rng.integers(0, 2, 3000).astype(np.float32)
    scores = rng.random(3000).astype(np.float32)
    metric = ExactAUC(capacity=4096, resort_threshold=700)
    update = tf.function(metric.update_state)
    for start in range(0, 3000, 500):
        update(labels[start:start + 500, None], scores[start:start + 500, None])
    assert float(tf.function(metric.result)()) == pytest.approx(exact_auc(labels, scores), abs=1e-6)


def test_exact_auc_metric_differs_from_bucketed_keras_auc():
    """Scores packed into one Keras threshold bucket: keras.metrics.AUC
    cannot order them, ExactAUC can."""
    labels = np.array([0, 1, 0, 1, 1, 0], np.float32)
    scores = np.array([0.5001, 0.5002, 0.5003, 0.5004, 0.5005, 0.4999], np.float32)
    exact = ExactAUC(capacity=16)
    exact.update_state(labels, scores)
    expected = _pairwise_auc(labels, scores)
    assert float(exact.result()) == pytest.approx(expected, abs=1e-7)
    bucketed = keras.metrics.AUC()
    bucketed.update_state(labels, scores)
    assert abs(float(bucketed.result()) - expected) > 0.05


def test_exact_auc_metric_in_fit_and_evaluate():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(512, 4)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=512) > 0).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=[ExactAUC(capacity=1024, resort_threshold=200)])
    history = model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    assert len(history.history["exact_auc"]) == 2
    assert all(0.5 < v <= 1.0 for v in history.history["exact_auc"])
    logs = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    predictions = model.predict(x, batch_size=64, verbose=0)[:, 0]
    assert logs["exact_auc"] == pytest.approx(exact_auc(y, predictions), abs=1e-6)


def test_exact_auc_metric_overflow_is_nan_until_reset():
    labels, scores = _tied_data(14, n=40)
    metric = ExactAUC(capacity=32)
    metric.update_state(labels[:32], scores[:32])
    assert float(metric.result()) == pytest.approx(exact_auc(labels[:32], scores[:32]), abs=1e-6)
    metric.update_state(labels[32:], scores[32:])
    assert np.isnan(float(metric.result()))
    metric.reset_state()
    metric.update_state(labels[8:], scores[8:])
    assert float(metric.result()) == pytest.approx(exact_auc(labels[8:], scores[8:]), abs=1e-6)


def test_exact_auc_metric_is_nan_with_one_class():
    metric = ExactAUC(capacity=8)
    assert np.isnan(float(metric.result()))
    metric.update_state([1.0, 1.0], [0.2, 0.3])
    assert np.isnan(float(metric.result()))
    metric.update_state([0.0], [0.25])
    assert float(metric.result()) == pytest.approx(0.5, abs=1e-7)


def test_dinrepo_gauc_metric_streams_and_weights():
    rng = np.random.default_rng(15)
    pairs = np.round(rng.random((200, 2)), 1).astype(np.float32)  # ties present
    metric = DinRepoGAUC()
    for start in range(0, 200, 50):
        metric.update_state(np.zeros(50), pairs[start:start + 50])
    assert float(metric.result()) == pytest.approx(dinrepo_gauc(pairs[:, 0], pairs[:, 1]), abs=1e-6)
    weighted = DinRepoGAUC()
    weighted.update_state(np.zeros(3), [[0.9, 0.1], [0.2, 0.3], [0.5, 0.5]], sample_weight=[3.0, 1.0, 1.0])
    assert float(weighted.result()) == pytest.approx(3 / 5, abs=1e-7)


def test_dinrepo_gauc_metric_in_evaluate():
    rng = np.random.default_rng(16)
    pairs = rng.normal(size=(96, 2)).astype(np.float32)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Identity()])
    model.compile(loss="mse", metrics=[DinRepoGAUC()])  # Keras' evaluate needs some loss
    logs = model.evaluate(pairs, np.zeros((96, 2)), batch_size=32, verbose=0, return_dict=True)
    assert logs["dinrepo_gauc"] == pytest.approx(np.mean(pairs[:, 0] > pairs[:, 1]), abs=1e-6)


@pytest.mark.parametrize("make_metric,expected", [
    (lambda: ExactAUC(capacity=10, resort_threshold=3, name="auc_x", dtype="float64"),
     {"name": "auc_x", "dtype": "float64", "capacity": 10, "resort_threshold": 3}),
    (lambda: DinRepoGAUC(name="g"), {"name": "g", "dtype": "float32"}),
])
def test_config_round_trip(make_metric, expected):
    metric = make_metric()
    config = metric.get_config()
    assert config == expected
    clone = type(metric).from_config(config)
    assert clone.get_config() == config
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert type(restored) is type(metric)
    assert restored.get_config() == config
    assert keras.saving.get_registered_name(type(metric)) == f"din_tf>{type(metric).__name__}"


def test_public_api():
    assert set(metrics.__all__) == {
        "DinRepoGAUC", "ExactAUC", "dien_calc_auc", "dinrepo_calc_auc",
        "dinrepo_gauc", "exact_auc", "gauc", "rela_impr",
    }


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("function", [exact_auc, dien_calc_auc, dinrepo_calc_auc])
def test_auc_functions_reject_bad_input(function):
    with pytest.raises(ValueError, match=r"Invalid labels: expected at least one element"):
        function([], [])
    with pytest.raises(ValueError, match=r"labels has 3, scores has 2"):
        function([0, 1, 1], [0.1, 0.2])
    with pytest.raises(
        ValueError,
        match=r"Invalid labels: expected binary values \(0 or 1\), received \[2\.0\]",
    ):
        function([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(
        ValueError,
        match=r"Invalid scores: expected no NaN, received 1 NaN value\(s\) at indices \[1\]",
    ):
        function([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match=r"Invalid scores: expected a 1-D array .* received shape \(2, 2\)"):
        function([0, 1], [[0.1, 0.2], [0.3, 0.4]])


@pytest.mark.parametrize("function", [exact_auc, dien_calc_auc])
def test_auc_functions_reject_one_class(function):
    with pytest.raises(ValueError, match=r"Invalid labels for .*both classes"):
        function([1, 1], [0.1, 0.2])


def test_exact_auc_rejects_bad_weights():
    with pytest.raises(
        ValueError,
        match=r"Invalid sample_weight: expected non-negative values, received \[-1\.0\]",
    ):
        exact_auc([0, 1], [0.1, 0.2], sample_weight=[1.0, -1.0])
    with pytest.raises(ValueError, match=r"labels has 2, sample_weight has 3"):
        exact_auc([0, 1], [0.1, 0.2], sample_weight=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"positive weight 0\.0 and negative weight 1\.0"):
        exact_auc([0, 1], [0.1, 0.2], sample_weight=[1.0, 0.0])


def test_dinrepo_gauc_rejects_bad_input():
    with pytest.raises(ValueError, match=r"pos_scores has 2, neg_scores has 1"):
        dinrepo_gauc([0.1, 0.2], [0.3])
    with pytest.raises(ValueError, match=r"Invalid pos_scores: expected at least one element"):
        dinrepo_gauc([], [])


def test_gauc_rejects_bad_input():
    with pytest.raises(ValueError, match=r"user_ids has 3, labels has 2, scores has 2"):
        gauc([1, 2, 3], [0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"no user among 2 has both a click and a non-click"):
        gauc([1, 2], [0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"Invalid weights: expected non-negative values, received \[-2\.0\]"):
        gauc([1, 1], [0, 1], [0.1, 0.2], weights=[1.0, -2.0])
    with pytest.raises(ValueError, match=r"Invalid user_ids: expected at least one element"):
        gauc([], [], [])


def test_rela_impr_rejects_bad_input():
    with pytest.raises(ValueError, match=r"Invalid base_auc=0\.5; expected a value other than 0\.5"):
        rela_impr(0.7, 0.5)
    with pytest.raises(ValueError, match=r"Invalid model_auc=-0\.5; expected a number in \[0, 1\]"):
        rela_impr(-0.5, 0.6)  # the DIN repo's one-class sentinel
    with pytest.raises(ValueError, match=r"Invalid base_auc=1\.2"):
        rela_impr(0.7, 1.2)


def test_exact_auc_metric_rejects_bad_input():
    with pytest.raises(ValueError, match=r"Invalid capacity=0; expected a positive integer"):
        ExactAUC(capacity=0)
    with pytest.raises(ValueError, match=r"Invalid resort_threshold=1\.5"):
        ExactAUC(resort_threshold=1.5)
    metric = ExactAUC(capacity=16)
    with pytest.raises(
        ValueError,
        match=r"Invalid y_pred: expected shape \[B\], \[B, 1\] or \[B, 2\] .* received shape \(2, 3\)",
    ):
        metric.update_state([0.0, 1.0], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"y_true has 3, y_pred has 2"):
        metric.update_state([0.0, 1.0, 1.0], [0.1, 0.2])
    with pytest.raises(
        ValueError,
        match=r"Invalid y_true: expected binary values \(0 or 1\), received \[0\.5\]",
    ):
        metric.update_state([0.0, 0.5], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"Invalid y_pred: expected no NaN"):
        metric.update_state([0.0, 1.0], [0.1, np.nan])
    with pytest.raises(ValueError, match=r"Invalid y_true: expected at least one element"):
        metric.update_state(np.zeros(0), np.zeros(0))
    with pytest.raises(
        ValueError,
        match=r"Invalid sample_weight: expected shape \[B\] or \[B, 1\], received shape \(2, 2\)",
    ):
        metric.update_state([0.0, 1.0], [0.1, 0.2], sample_weight=np.ones((2, 2)))
    # Nothing was stored by the rejected calls.
    assert np.isnan(float(metric.result()))


def test_exact_auc_metric_asserts_labels_in_graph_mode():
    metric = ExactAUC(capacity=16)
    update = tf.function(metric.update_state)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"y_true must be 0/1"):
        update(tf.constant([0.0, 0.5]), tf.constant([0.1, 0.2]))


def test_dinrepo_gauc_metric_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"Invalid y_pred: expected shape \[B, 2\] .* received shape \(3,\)"):
        DinRepoGAUC().update_state(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"expected at least one pair, received shape \(0, 2\)"):
        DinRepoGAUC().update_state(np.zeros(0), np.zeros((0, 2)))
