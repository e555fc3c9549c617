"""Row files: batches equal to make_dataset's, sharding by files, atomic
writes, argument errors, reshuffled passes, a graph without the rows."""

import collections
import os

import numpy as np
import pytest
import tensorflow as tf

from din_tf import features as F
from din_tf.data import pipeline, row_files
from din_tf.data.row_files import read_row_files, write_row_files
from din_tf.data.samples import Samples

K = 3
N_ITEMS = 50


def _toy(n=40, max_len=12, fixed_negatives=False, seed=0):
    """`n` rows with user id = row number, histories of 0..max_len steps
    (some empty), optionally K fixed negatives per step."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, max_len + 1, n)
    lengths[1] = max_len  # at least one long history
    hist = [rng.integers(1, N_ITEMS, l) for l in lengths]
    neg = negc = None
    if fixed_negatives:
        neg = [rng.integers(1, N_ITEMS, (l, K)) for l in lengths]
        negc = [x % 5 for x in neg]
    return Samples.from_lists(
        user_id=np.arange(n), item_id=rng.integers(1, N_ITEMS, n),
        category_id=rng.integers(1, 5, n), label=rng.integers(0, 2, n),
        history_items=hist, history_categories=[h % 5 + 1 for h in hist],
        negative_items=neg, negative_categories=negc)


def _sampler(k=4):
    pool = np.concatenate([np.arange(N_ITEMS), np.arange(1, 4).repeat(10)])
    return pipeline.NegativeSampler(pool=pool, item_category=np.arange(N_ITEMS) % 5,
                                    num_negatives=k)


def _collect(ds):
    return [({k: v.numpy() for k, v in f.items()}, l.numpy()) for f, l in ds]


def _assert_same_batches(ours, theirs):
    assert ours.element_spec == theirs.element_spec
    a, b = list(ours), list(theirs)
    assert len(a) == len(b)
    for (fa, la), (fb, lb) in zip(a, b):
        assert list(fa) == list(fb)
        for key in fa:
            assert fa[key].dtype == fb[key].dtype, key
            np.testing.assert_array_equal(fa[key].numpy(), fb[key].numpy(), err_msg=key)
        assert la.dtype == lb.dtype == tf.float32
        np.testing.assert_array_equal(la.numpy(), lb.numpy())


def _rows(batches):
    return collections.Counter(
        (int(u), int(i), float(y)) for f, label in batches
        for u, i, y in zip(f[F.USER_ID], f[F.ITEM_ID], label))


# -- (a) the batches of make_dataset -------------------------------------------

@pytest.mark.parametrize("maxlen", [None, 5])
@pytest.mark.parametrize("fixed_negatives", [False, True])
@pytest.mark.parametrize("num_files", [1, 3])
def test_batches_equal_make_dataset(tmp_path, maxlen, fixed_negatives, num_files):
    # With 3 files read one row from each in turn, rows come back in written order.
    samples = _toy(fixed_negatives=fixed_negatives)
    files = write_row_files(samples, tmp_path / "rows", num_files)
    _assert_same_batches(read_row_files(files, 8, maxlen=maxlen),
                         pipeline.make_dataset(samples, 8, maxlen=maxlen))


def test_sampled_negatives_differ_from_click_and_are_zero_on_padding(tmp_path):
    samples = _toy(n=64, fixed_negatives=True)  # the sampler replaces the fixed ones
    files = write_row_files(samples, tmp_path / "rows", 2)
    ds = read_row_files(files, 16, maxlen=8, negatives=_sampler(), seed=5)
    reference = _collect(pipeline.make_dataset(samples, 16, maxlen=8, negatives=_sampler()))
    batches = _collect(ds)
    assert len(batches) == len(reference)
    seen = set()
    for (feats, label), (ref, ref_label) in zip(batches, reference):
        for key in F.BASE_KEYS:  # everything but the drawn negatives is make_dataset's
            np.testing.assert_array_equal(feats[key], ref[key], err_msg=key)
        np.testing.assert_array_equal(label, ref_label)
        neg, his = feats[F.NEGATIVE_ITEM_IDS], feats[F.HISTORY_ITEM_IDS]
        assert neg.shape == his.shape + (4,) and neg.dtype == np.int32
        mask = np.arange(his.shape[1])[None, :] < feats[F.HISTORY_LENGTH][:, None]
        assert not (neg == his[..., None])[mask].any()
        assert (neg[~mask] == 0).all() and (feats[F.NEGATIVE_CATEGORY_IDS][~mask] == 0).all()
        np.testing.assert_array_equal(feats[F.NEGATIVE_CATEGORY_IDS][mask], neg[mask] % 5)
        seen.update(neg[mask].ravel().tolist())
    assert len(seen) > 20
    # Seeded by (seed, shard, batch number): the same again, another seed differs.
    neg = lambda bs: np.concatenate([f[F.NEGATIVE_ITEM_IDS].ravel() for f, _ in bs])
    np.testing.assert_array_equal(neg(_collect(ds)), neg(batches))
    other = _collect(read_row_files(files, 16, maxlen=8, negatives=_sampler(), seed=6))
    assert not np.array_equal(neg(other), neg(batches))


# -- (b) sharding by files ---------------------------------------------------------

def test_shards_read_disjoint_files_covering_every_row(tmp_path):
    samples = _toy(n=45)
    files = write_row_files(samples, tmp_path / "rows", 5)
    shards = [_collect(read_row_files(files, 4, num_shards=2, shard_index=i, shuffle=True,
                                      seed=1)) for i in range(2)]
    users = [np.concatenate([f[F.USER_ID] for f, _ in batches]) for batches in shards]
    # Row i is in file i % 5; shard 0 reads files 0, 2, 4 and shard 1 files 1, 3.
    assert sorted(users[0].tolist()) == [i for i in range(45) if i % 5 in (0, 2, 4)]
    assert sorted(users[1].tolist()) == [i for i in range(45) if i % 5 in (1, 3)]
    everything = _rows(_collect(pipeline.make_dataset(samples, 45)))
    assert _rows(shards[0]) + _rows(shards[1]) == everything
    assert not set(_rows(shards[0])) & set(_rows(shards[1]))


def test_shard_index_tensor_and_parity_with_row_shards(tmp_path):
    # 4 files over 2 shards hold rows i, i + 2, ...: make_dataset's row shards.
    samples = _toy(n=30, fixed_negatives=True)
    files = write_row_files(samples, tmp_path / "rows", 4)
    # A scalar tensor index in a traced function, as a parameter-server worker's
    # index is (tf.distribute.coordinator.experimental_get_current_worker_index()).
    traced = tf.function(lambda i: read_row_files(files, 4, maxlen=6, num_shards=2,
                                                  shard_index=i))
    for index in range(2):
        expected = pipeline.make_dataset(samples, 4, maxlen=6, num_shards=2, shard_index=index)
        _assert_same_batches(read_row_files(files, 4, maxlen=6, num_shards=2,
                                            shard_index=index), expected)
        _assert_same_batches(traced(tf.constant(index, tf.int64)), expected)


def test_fewer_files_than_shards_is_refused(tmp_path):
    files = write_row_files(_toy(n=6), tmp_path / "rows", 2)
    with pytest.raises(ValueError, match=r"'num_shards'.*at most one shard per file \(2 files\)"
                                         r".*got 3"):
        read_row_files(files, 2, num_shards=3)


# -- (c) atomic writes and argument errors -------------------------------------------

def test_write_is_atomic(tmp_path, monkeypatch):
    samples = _toy(n=10)
    calls = []

    def failing(samples, row, fixed_negatives):
        calls.append(row)
        if len(calls) == 7:
            raise OSError("disk full")
        return real(samples, row, fixed_negatives)

    real = row_files._example
    monkeypatch.setattr(row_files, "_example", failing)
    with pytest.raises(OSError, match="disk full"):
        write_row_files(samples, tmp_path / "rows", 2)
    assert os.listdir(tmp_path) == []  # neither the directory nor a staging sibling
    monkeypatch.undo()
    files = write_row_files(samples, tmp_path / "rows", 2)
    assert [os.path.basename(f) for f in files] == ["rows-00000-of-00002.tfrecord",
                                                    "rows-00001-of-00002.tfrecord"]
    assert os.listdir(tmp_path) == ["rows"]


def test_refuses_a_non_empty_directory(tmp_path):
    target = tmp_path / "rows"
    target.mkdir()
    write_row_files(_toy(n=5), target, 1)  # an empty directory is fine
    with pytest.raises(ValueError, match=rf"'directory' '{target}' exists and is not empty"):
        write_row_files(_toy(n=5), target, 2)
    assert sorted(os.listdir(target)) == ["rows-00000-of-00001.tfrecord"]
    assert os.listdir(tmp_path) == ["rows"]
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ValueError, match="'directory'.*which is a file"):
        write_row_files(_toy(n=5), tmp_path / "a_file", 1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(samples="rows"), r"'samples' expected a Samples, got str"),
    (dict(num_files=0), r"'num_files' expected an int in \[1, 5\].*got 0"),
    (dict(num_files=6), r"'num_files' expected an int in \[1, 5\].*got 6"),
    (dict(num_files=2.0), r"'num_files' expected .*got 2\.0"),
    (dict(directory=""), r"'directory' expected a path, got ''"),
])
def test_write_argument_errors_name_the_argument(tmp_path, kwargs, match):
    args = dict(samples=_toy(n=5), directory=tmp_path / "rows", num_files=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        write_row_files(args["samples"], args["directory"], args["num_files"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(files="rows.tfrecord"), r"'files' expected a list of file paths.*got 'rows"),
    (dict(files=[]), r"'files' expected a non-empty list of file paths, got \[\]"),
    (dict(files=["/nonexistent/rows.tfrecord"]), r"'files' expected existing files, got "
                                                  r"'/nonexistent/rows.tfrecord'"),
    (dict(batch_size=0), r"'batch_size' expected a positive int, got 0"),
    (dict(maxlen=-1), r"'maxlen' expected a positive int or None, got -1"),
    (dict(negatives="uniform"), r"'negatives' expected a NegativeSampler or None, got "
                                r"'uniform'"),
    (dict(shuffle=1), r"'shuffle' expected a bool, got 1"),
    (dict(repeat=None), r"'repeat' expected a bool, got None"),
    (dict(seed=1.5), r"'seed' expected an int64, got 1.5"),
    (dict(shuffle_buffer=0), r"'shuffle_buffer' expected a positive int, got 0"),
    (dict(num_shards=0), r"'num_shards' expected a positive int, got 0"),
    (dict(shard_index=2), r"'shard_index' expected an int in \[0, num_shards=2\), got 2"),
    (dict(shard_index=tf.constant([0])), r"'shard_index' expected a scalar int tensor"),
])
def test_read_argument_errors_name_the_argument(tmp_path, kwargs, match):
    args = dict(files=write_row_files(_toy(n=5), tmp_path / "rows", 2), batch_size=2,
                num_shards=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        read_row_files(args.pop("files"), args.pop("batch_size"), **args)


# -- (d) repeated, shuffled passes ------------------------------------------------------

def test_repeat_and_shuffle_reshuffle_every_pass(tmp_path):
    samples = _toy(n=40)
    files = write_row_files(samples, tmp_path / "rows", 4)
    ds = read_row_files(files, 8, shuffle=True, seed=3, repeat=True)
    users = np.concatenate([f[F.USER_ID] for f, _ in _collect(ds.take(10))])
    first, second = users[:40], users[40:]
    assert sorted(first.tolist()) == list(range(40)) == sorted(second.tolist())
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, np.arange(40))
    # The same arguments build the same stream.
    rebuilt = read_row_files(files, 8, shuffle=True, seed=3, repeat=True)
    again = np.concatenate([f[F.USER_ID] for f, _ in _collect(rebuilt.take(10))])
    np.testing.assert_array_equal(again, users)


# -- the graph a worker receives ---------------------------------------------------------

def test_graph_holds_no_rows_and_no_python(tmp_path):
    def graph(n):
        files = write_row_files(_toy(n=n, fixed_negatives=True), tmp_path / f"r{n:04d}", 2)
        ds = read_row_files(files, 8, maxlen=5, negatives=_sampler(), shuffle=True,
                            repeat=True, num_shards=2, shard_index=1)
        return ds._as_serialized_graph().numpy()

    small, large = graph(20), graph(2000)
    assert len(small) == len(large)  # the rows are not in it
    assert b"PyFunc" not in large


def test_deal_seed_mixes_a_stored_pattern_into_every_file(tmp_path):
    """Rows stored clicked / non-clicked in turn over an even number of files:
    dealt in turn every file holds one label; dealt by a permutation every
    file holds both, and together the files hold every row once."""
    samples = _toy(n=40)
    samples.label[:] = np.arange(40) % 2

    def labels_per_file(directory, **kwargs):
        files = write_row_files(samples, tmp_path / directory, 4, **kwargs)
        per_file = []
        for path in files:
            batches = list(read_row_files([path], 64))
            per_file.append((np.concatenate([f[F.USER_ID] for f, _ in batches]),
                             np.concatenate([label for _, label in batches])))
        return per_file

    assert [set(labels.tolist()) for _, labels in labels_per_file("in_turn")] == [
        {0.0}, {1.0}, {0.0}, {1.0}]
    dealt = labels_per_file("dealt", deal_seed=0)
    assert all(set(labels.tolist()) == {0.0, 1.0} for _, labels in dealt)
    assert sorted(np.concatenate([users for users, _ in dealt]).tolist()) == list(range(40))
    assert all(np.all(np.diff(users) > 0) for users, _ in dealt)  # each in stored order
    with pytest.raises(ValueError, match=r"'deal_seed' expected an int or None, got 1.5"):
        write_row_files(samples, tmp_path / "bad", 2, deal_seed=1.5)
