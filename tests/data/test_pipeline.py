"""tf.data input: parity with the original prepare_data, truncation, masks,
negatives, determinism, bucketing, sharding."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from din_tf import features as F
from din_tf.data import pipeline
from din_tf.data.samples import Samples
from tests.conftest import GOLDEN_VARIANTS, golden_variant, load_golden

NAMES = ("uids", "mids", "cats", "mid_his", "cat_his", "mid_mask", "target", "lengths_x",
         "noclk_mid_his", "noclk_cat_his")
PREPARED_GROUP = re.compile(r"out/prepare_maxlen_(None|\d+)/uids")


def _write_regenerated_prepare_file(directory, lengths=(2, 8, 1, 5, 3, 7), num_negatives=3,
                                    maxlens=(None, 3, 6), seed=17):
    """A prepare_data golden file laid out like the stored one with other
    shapes (rows, history lengths, negatives per step, maxlen values). The
    expected outputs are built directly: each row keeps its last
    min(length, maxlen) steps, left-aligned and zero-padded to the longest."""
    rng = np.random.default_rng(seed)
    rows = len(lengths)
    arrays = {"in/src_uid_mid_cat": rng.integers(0, 50, (rows, 3)),
              "in/target": np.eye(2, dtype=np.float32)[rng.integers(0, 2, rows)]}
    steps = {"mid_list": (), "cat_list": (), "noclk_mid_list": (num_negatives,),
             "noclk_cat_list": (num_negatives,)}
    for k, length in enumerate(lengths):
        for name, tail in steps.items():
            arrays[f"in/src{k}_{name}"] = rng.integers(1, 50, (length,) + tail)
    for maxlen in maxlens:
        kept = np.array([n if maxlen is None else min(n, maxlen) for n in lengths], np.int64)
        width = int(kept.max())
        out = f"out/prepare_maxlen_{maxlen}/"
        for column, name in enumerate(("uids", "mids", "cats")):
            arrays[out + name] = arrays["in/src_uid_mid_cat"][:, column]
        for name, source in (("mid_his", "mid_list"), ("cat_his", "cat_list"),
                             ("noclk_mid_his", "noclk_mid_list"),
                             ("noclk_cat_his", "noclk_cat_list")):
            padded = np.zeros((rows, width) + steps[source], np.int64)
            for k, (length, n) in enumerate(zip(lengths, kept)):
                padded[k, :n] = arrays[f"in/src{k}_{source}"][length - n:]
            arrays[out + name] = padded
        arrays[out + "mid_mask"] = (np.arange(width)[None, :] < kept[:, None]).astype(np.float32)
        arrays[out + "target"] = arrays["in/target"]
        arrays[out + "lengths_x"] = kept
    np.savez(os.path.join(directory, "metrics_and_prepare_data.npz"), **arrays)


@pytest.fixture(params=GOLDEN_VARIANTS)
def golden(request, tmp_path):
    return golden_variant(request.param, "metrics_and_prepare_data", _write_regenerated_prepare_file, tmp_path)


def _golden_maxlens(z):
    """The maxlen of every `out/prepare_maxlen_<m>/` group in the file."""
    found = sorted({m.group(1) for m in map(PREPARED_GROUP.fullmatch, z) if m})
    assert found, "no out/prepare_maxlen_<m>/ outputs in the golden file"
    return [None if m == "None" else int(m) for m in found]


def _golden_source(z):
    rows = []
    for k, (uid, mid, cat) in enumerate(z["in/src_uid_mid_cat"]):
        rows.append([uid, mid, cat, z[f"in/src{k}_mid_list"].tolist(),
                     z[f"in/src{k}_cat_list"].tolist(), z[f"in/src{k}_noclk_mid_list"].tolist(),
                     z[f"in/src{k}_noclk_cat_list"].tolist()])
    return rows, z["in/target"]


def _golden_samples(z):
    rows, target = _golden_source(z)
    return Samples.from_lists(
        user_id=[r[0] for r in rows], item_id=[r[1] for r in rows],
        category_id=[r[2] for r in rows], label=target[:, 0],
        history_items=[r[3] for r in rows], history_categories=[r[4] for r in rows],
        negative_items=[r[5] for r in rows], negative_categories=[r[6] for r in rows])


def test_numpy_prepare_data_matches_golden(golden):
    rows, target = _golden_source(golden)
    for maxlen in _golden_maxlens(golden):
        out = pipeline.prepare_data(rows, target, maxlen=maxlen, return_neg=True)
        for name, value in zip(NAMES, out):
            expected = golden[f"out/prepare_maxlen_{maxlen}/{name}"]
            assert value.dtype == expected.dtype, (maxlen, name)
            np.testing.assert_array_equal(value, expected, err_msg=f"maxlen={maxlen} {name}")


def test_regenerated_prepare_file_has_other_shapes(tmp_path):
    _write_regenerated_prepare_file(str(tmp_path))
    regenerated = load_golden("metrics_and_prepare_data", directory=str(tmp_path))
    stored = load_golden("metrics_and_prepare_data")
    assert _golden_maxlens(regenerated) != _golden_maxlens(stored)
    for key in ("in/src_uid_mid_cat", "out/prepare_maxlen_None/noclk_mid_his"):
        assert regenerated[key].shape != stored[key].shape, key


def test_numpy_prepare_data_empty_with_maxlen():
    assert pipeline.prepare_data([], [], maxlen=3) == (None, None, None, None)


def test_tf_data_matches_golden(golden):
    samples = _golden_samples(golden)
    pairs = {F.USER_ID: "uids", F.ITEM_ID: "mids", F.CATEGORY_ID: "cats",
             F.HISTORY_ITEM_IDS: "mid_his", F.HISTORY_CATEGORY_IDS: "cat_his",
             F.HISTORY_MASK: "mid_mask", F.HISTORY_LENGTH: "lengths_x",
             F.NEGATIVE_ITEM_IDS: "noclk_mid_his", F.NEGATIVE_CATEGORY_IDS: "noclk_cat_his"}
    for maxlen in _golden_maxlens(golden):
        ds = pipeline.make_dataset(samples, batch_size=len(samples), maxlen=maxlen,
                                   with_mask=True)
        (feats, label), = list(ds)
        key = f"out/prepare_maxlen_{maxlen}/"
        for ours, theirs in pairs.items():
            np.testing.assert_array_equal(feats[ours].numpy(), golden[key + theirs],
                                          err_msg=f"maxlen={maxlen} {ours}")
            assert feats[ours].dtype == F.FEATURES_BY_NAME[ours].dtype
        np.testing.assert_array_equal(label.numpy(), golden[key + "target"][:, 0])
        assert label.dtype == tf.float32


def _toy(n=64, max_len=30, n_items=50, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len + 1, n)
    hist = [rng.integers(1, n_items, l) for l in lengths]
    return Samples.from_lists(
        user_id=np.arange(n), item_id=rng.integers(1, n_items, n),
        category_id=rng.integers(1, 5, n), label=rng.integers(0, 2, n),
        history_items=hist, history_categories=[h % 5 for h in hist])


def _sampler(n_items=50, k=5):
    pool = np.concatenate([np.arange(n_items), np.arange(1, 6).repeat(20)])  # popular 1..5
    return pipeline.NegativeSampler(pool=pool, item_category=np.arange(n_items) % 5,
                                    num_negatives=k)


def _collect(ds):
    return [({k: v.numpy() for k, v in f.items()}, l.numpy()) for f, l in ds]


def test_truncation_keeps_last_maxlen_and_masks_padding():
    samples = _toy()
    batches = _collect(pipeline.make_dataset(samples, 16, maxlen=7, with_mask=True))
    row = 0
    for feats, _ in batches:
        for b in range(feats[F.USER_ID].shape[0]):
            items, _ = samples.history(row)
            kept = items[-7:]
            n = len(kept)
            assert feats[F.HISTORY_LENGTH][b] == n
            np.testing.assert_array_equal(feats[F.HISTORY_ITEM_IDS][b, :n], kept)
            assert (feats[F.HISTORY_ITEM_IDS][b, n:] == 0).all()
            assert (feats[F.HISTORY_MASK][b, :n] == 1).all()
            assert (feats[F.HISTORY_MASK][b, n:] == 0).all()
            row += 1
        assert feats[F.HISTORY_ITEM_IDS].shape[1] == feats[F.HISTORY_LENGTH].max()
    assert row == len(samples)


def test_evaluation_keeps_full_length_and_pad_to_maxlen():
    samples = _toy()
    feats, _ = next(iter(pipeline.make_dataset(samples, 64)))
    np.testing.assert_array_equal(feats[F.HISTORY_LENGTH], samples.history_length)
    feats, _ = next(iter(pipeline.make_dataset(samples, 8, maxlen=40, pad_to_maxlen=True)))
    assert feats[F.HISTORY_ITEM_IDS].shape == (8, 40)


def test_negatives_never_equal_positive_and_padding_zero():
    samples = _toy(n=128)
    ds = pipeline.make_dataset(samples, 32, negatives=_sampler(), seed=3, with_mask=True)
    seen = set()
    for feats, _ in _collect(ds):
        neg, his = feats[F.NEGATIVE_ITEM_IDS], feats[F.HISTORY_ITEM_IDS]
        mask = feats[F.HISTORY_MASK].astype(bool)
        assert neg.shape == his.shape + (5,)
        assert not (neg == his[..., None])[mask].any()
        assert (neg[~mask] == 0).all() and (feats[F.NEGATIVE_CATEGORY_IDS][~mask] == 0).all()
        np.testing.assert_array_equal(feats[F.NEGATIVE_CATEGORY_IDS][mask], neg[mask] % 5)
        seen.update(neg[mask].ravel().tolist())
    assert len(seen) > 20


def test_negatives_rejection_with_tiny_pool():
    # Pool of two ids: every step whose click is one of them must get the other.
    samples = Samples.from_lists([1, 2], [1, 1], [0, 0], [1, 0], [[1, 2, 1], [2]],
                                 [[0, 0, 0], [0]])
    sampler = pipeline.NegativeSampler(pool=[1, 2], item_category=[0, 0, 0], num_negatives=4)
    feats, _ = next(iter(pipeline.make_dataset(samples, 2, negatives=sampler)))
    np.testing.assert_array_equal(feats[F.NEGATIVE_ITEM_IDS][0], [[2] * 4, [1] * 4, [2] * 4])
    np.testing.assert_array_equal(feats[F.NEGATIVE_ITEM_IDS][1, 0], [1] * 4)


def test_same_seed_same_output_different_seed_different_negatives():
    samples = _toy()

    def run(seed):
        return _collect(pipeline.make_dataset(samples, 16, negatives=_sampler(), shuffle=True,
                                              seed=seed))

    a, b, c = run(7), run(7), run(8)
    for (fa, la), (fb, lb) in zip(a, b):
        for k in fa:
            np.testing.assert_array_equal(fa[k], fb[k])
        np.testing.assert_array_equal(la, lb)
    neg = lambda r: np.concatenate([f[F.NEGATIVE_ITEM_IDS].ravel() for f, _ in r])
    order = lambda r: np.concatenate([f[F.USER_ID] for f, _ in r])
    assert not np.array_equal(order(a), order(c))
    # Same rows in the same order but another seed: the negatives differ.
    a2 = _collect(pipeline.make_dataset(samples, 16, negatives=_sampler(), seed=7))
    c2 = _collect(pipeline.make_dataset(samples, 16, negatives=_sampler(), seed=8))
    assert not np.array_equal(neg(a2), neg(c2))


def test_shuffle_covers_every_row_once_and_epochs_differ():
    samples = _toy(n=50)
    ds = pipeline.make_dataset(samples, 8, shuffle=True, seed=1, negatives=_sampler())
    e1 = np.concatenate([f[F.USER_ID] for f, _ in _collect(ds)])
    e2 = np.concatenate([f[F.USER_ID] for f, _ in _collect(ds)])
    assert sorted(e1.tolist()) == list(range(50)) == sorted(e2.tolist())
    assert not np.array_equal(e1, e2)


def test_bucketing_groups_similar_lengths():
    samples = _toy(n=200, max_len=60)
    ds = pipeline.make_dataset(samples, 16, bucket_boundaries=[10, 20, 40], shuffle=True)
    users = []
    for feats, _ in _collect(ds):
        lengths = feats[F.HISTORY_LENGTH]
        bucket = np.digitize(lengths, [10, 20, 40])
        assert len(set(bucket.tolist())) == 1
        users.extend(feats[F.USER_ID].tolist())
    assert sorted(users) == list(range(200))


def test_sharding_partitions_rows():
    samples = _toy(n=30)
    got = []
    for index in range(3):
        ds = pipeline.make_dataset(samples, 4, num_shards=3, shard_index=index)
        got.append(np.concatenate([f[F.USER_ID] for f, _ in _collect(ds)]))
    assert sorted(np.concatenate(got).tolist()) == list(range(30))
    np.testing.assert_array_equal(got[1], np.arange(1, 30, 3))


@pytest.mark.parametrize("pass_index", [None, 0])
def test_shard_index_may_be_a_tensor_known_when_the_pipeline_runs(pass_index):
    """A parameter-server worker's index is a tensor inside its input
    function: the shard equals the one an int index selects."""
    samples = _toy(n=30)
    index = tf.Variable(1)

    @tf.function
    def first_batch():
        ds = pipeline.make_dataset(samples, 4, num_shards=3, shard_index=index.read_value(),
                                   pass_index=pass_index)
        return next(iter(ds))[0][F.USER_ID]

    expected = pipeline.make_dataset(samples, 4, num_shards=3, shard_index=1,
                                     pass_index=pass_index)
    np.testing.assert_array_equal(first_batch(), next(iter(expected))[0][F.USER_ID])
    np.testing.assert_array_equal(first_batch(), [1, 4, 7, 10])
    with pytest.raises(ValueError, match=r"'shard_index' expected an int or a scalar integer "
                                         "tensor"):
        pipeline.make_dataset(samples, 4, num_shards=3, shard_index=tf.constant([1, 2]))


@pytest.mark.parametrize("pass_index", [None, 0])
def test_shard_seed_deals_rows_by_a_fixed_permutation(pass_index):
    """Rows stored clicked / non-clicked in turn: dealt in turn to two shards,
    each holds one label; dealt by a permutation, both hold both, the shards
    still partition the rows, and each keeps them in stored order."""
    samples = _toy(n=40)
    samples.label[:] = np.arange(40) % 2
    def shard(index, shard_seed):
        ds = pipeline.make_dataset(samples, 8, num_shards=2, shard_index=index,
                                   shard_seed=shard_seed, pass_index=pass_index)
        batches = _collect(ds)
        return (np.concatenate([f[F.USER_ID] for f, _ in batches]),
                np.concatenate([label for _, label in batches]))
    assert [set(shard(i, None)[1].tolist()) for i in range(2)] == [{0.0}, {1.0}]
    dealt = [shard(i, 5) for i in range(2)]
    assert all(set(labels.tolist()) == {0.0, 1.0} for _, labels in dealt)
    assert sorted(np.concatenate([users for users, _ in dealt]).tolist()) == list(range(40))
    np.testing.assert_array_equal(shard(1, 5)[0], dealt[1][0])  # fixed by the seed
    assert all(np.all(np.diff(users) > 0) for users, _ in dealt)  # each in stored order
    # One shard: nothing to deal, the stored order.
    np.testing.assert_array_equal(
        np.concatenate([f[F.USER_ID] for f, _ in _collect(pipeline.make_dataset(
            samples, 8, shard_seed=5, pass_index=pass_index))]), np.arange(40))
    with pytest.raises(ValueError, match=r"'shard_seed' expected an int or None, got 'x'"):
        pipeline.make_dataset(samples, 8, shard_seed="x")


def test_input_fn_with_input_context():
    samples = _toy(n=30)
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                     num_replicas_in_sync=2)
    ds = pipeline.input_fn(samples, global_batch_size=8)(ctx)
    feats, _ = next(iter(ds))
    assert feats[F.USER_ID].shape[0] == 4
    np.testing.assert_array_equal(feats[F.USER_ID], [1, 3, 5, 7])


def test_element_spec_matches_features_spec():
    ds = pipeline.make_dataset(_toy(), 8, negatives=_sampler(), with_mask=True)
    specs = F.tensor_specs(with_negatives=True, with_mask=True)
    feats_spec, label_spec = ds.element_spec
    assert set(feats_spec) == set(specs)
    for key, spec in specs.items():
        assert feats_spec[key].dtype == spec.dtype, key
        assert feats_spec[key].shape.rank == spec.shape.rank, key
    assert label_spec.dtype == tf.float32 and label_spec.shape.rank == 1


def test_dien_iterator_batches_order():
    lengths = np.array([3, 9, 1, 7, 5, 2, 8])
    batches = pipeline.dien_iterator_batches(lengths, batch_size=2, max_batch_size=2)
    # Chunks of 4 rows, each sorted longest first, batches of 2.
    assert [b.tolist() for b in batches] == [[1, 3], [0, 2], [6, 4], [5]]
    ds = pipeline.make_dataset(_toy(n=7), 2, batches=batches)
    assert [f[F.USER_ID].tolist() for f, _ in _collect(ds)] == [[1, 3], [0, 2], [6, 4], [5]]


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=4, maxlen=-1), "maxlen"),
    (dict(batch_size=4, shard_index=2, num_shards=2), "shard_index"),
    (dict(batch_size=4, pad_to_maxlen=True), "pad_to_maxlen"),
    (dict(batch_size=4, batches=[[0]], shuffle=True), "batches"),
])
def test_argument_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        pipeline.make_dataset(_toy(), **kwargs)


def test_sampler_errors():
    with pytest.raises(ValueError, match="2 distinct"):
        pipeline.NegativeSampler(pool=[3, 3], item_category=np.zeros(5))
    with pytest.raises(ValueError, match="item_category"):
        pipeline.NegativeSampler(pool=[1, 9], item_category=np.zeros(5))
