"""The schema input pipeline (`din_tf.data.log_pipeline`) on a hand-built
`LogSamples`, against hand-computed rows.

The samples: a string user, an int64 item, multi-valued string genres (2
values), a numeric hour, and one behaviour sequence over (item, genres) with
`max_length` 3 and negatives. Stored steps (index: item, genres):

    0: 10 [a, b]   1: 20 [b]   2: 30 [c]   3: 40 [a]
    4: 99 [z]      5: 20 [b]   6: 50 [c, a]

Rows (user, item, genres, hour, label, window start, length):

    r0: u1 20 [b]          1.0 1  0 1  -> history 10
    r1: u1 30 [c]          2.0 0  0 2  -> 10 20
    r2: u1 50 [c, a]       3.0 1  0 4  -> 20 30 40 (10 cut by max_length)
    r3: u2 40 [a]          4.0 0  5 1  -> 20
    r4: u2 10 [a, Música]  5.0 1  5 0  -> empty

Kept windows read steps 0, 1 twice and 2, 3, 5 once; steps 4 and 6 are read
by no row, so 99 and z are out of vocabulary. Fitted rows (0 padding, 1 OOV,
then most frequent value first, ties by value):

    user:   u1 2, u2 3
    item:   20 2, 10 3, 30 4, 40 5, 50 6       (counts 3, 2, 2, 2, 1)
    genres: a 2, b 3, c 4, Música 5             (counts 5, 4, 3, 1)
"""

import dataclasses

import numpy as np
import tensorflow as tf
import pytest

from din_tf.data.log_pipeline import fit_schema, make_log_dataset, table_frequencies
from din_tf.data.log_samples import LogSamples, NegativePool, SequenceColumns
from din_tf.schema import (CategoricalFeature, FeatureEncoder, FeatureSchema, NumericFeature,
                           SchemaError, SequenceGroup)


def _schema(user_min_count=1):
    return FeatureSchema(
        features=[CategoricalFeature("user", "user", min_count=user_min_count),
                  CategoricalFeature("item", "candidate", dtype="int64"),
                  CategoricalFeature("genres", "candidate", max_values=2),
                  NumericFeature("hour", "context")],
        sequences=[SequenceGroup("history", ("item", "genres"), max_length=3,
                                 negatives=True)])


def _text(rows):
    return np.array([[v.encode() for v in row] for row in rows], "S")


def _samples(schema=None, pool_items=(10, 20, 30, 40, 50, 77), draws=(0, 1, 1, 2, 3, 4, 5, 5)):
    schema = schema or _schema()
    steps = SequenceColumns(
        start=np.array([0, 0, 0, 5, 5], np.int64),
        length=np.array([1, 2, 4, 1, 0], np.int32),
        steps={"item": np.array([10, 20, 30, 40, 99, 20, 50], np.int64),
               "genres": _text([["a", "b"], ["b", ""], ["c", ""], ["a", ""], ["z", ""],
                                ["b", ""], ["c", "a"]])})
    genres_of = {10: ["a", "b"], 20: ["b", ""], 30: ["c", ""], 40: ["a", ""], 50: ["c", "a"],
                 77: ["c", "b"]}
    pool = NegativePool(items={"item": np.array(pool_items, np.int64),
                               "genres": _text([genres_of[i] for i in pool_items])},
                        draws=np.array(draws, np.int64))
    return LogSamples(
        schema=schema,
        columns={"user": np.array([b"u1", b"u1", b"u1", b"u2", b"u2"]),
                 "item": np.array([20, 30, 50, 40, 10], np.int64),
                 "genres": _text([["b", ""], ["c", ""], ["c", "a"], ["a", ""],
                                  ["a", "Música"]]),
                 "hour": np.array([1, 2, 3, 4, 5], np.float32)},
        label=np.array([1, 0, 1, 0, 1], np.float32),
        sequences={"history": steps}, negatives={"history": pool})


@pytest.fixture(scope="module")
def fitted():
    samples = _samples()
    schema, vocabularies = fit_schema(samples)
    return samples, FeatureEncoder(schema, vocabularies)


def _batches(ds):
    return [({k: v.numpy() for k, v in features.items()}, label.numpy())
            for features, label in ds]


def _row_ids(features):
    """Rows of a batch, recovered from the (unique) standardized hour."""
    return np.rint(features["hour"] * np.sqrt(2.0) + 3.0).astype(int) - 1


def test_fit_schema_counts_only_covered_steps(fitted):
    samples, encoder = fitted
    schema, vocabularies = fit_schema(samples)
    assert vocabularies["user"].tolist() == ["u1", "u2"]
    assert vocabularies["item"].tolist() == [20, 10, 30, 40, 50]  # 99: uncovered step only
    # No "z" (uncovered); "Música" arrives as UTF-8 bytes and is decoded as such.
    assert vocabularies["genres"].tolist() == ["a", "b", "c", "Música"]
    assert [schema.feature(n).rows for n in ("user", "item", "genres")] == [4, 7, 6]
    hour = schema.feature("hour")
    assert hour.mean == pytest.approx(3.0) and hour.std == pytest.approx(np.sqrt(2.0))
    item, genres = schema.feature("item"), schema.feature("genres")
    assert encoder.encode_ids(item, np.array([99, 12345, 20], np.int64)).numpy().tolist() == \
        [1, 1, 2]
    assert encoder.encode_ids(genres, np.array([[b"z", b""], [b"c", b"a"]])).numpy().tolist() \
        == [[1, 0], [4, 2]]


def test_empty_vocabulary_is_an_error():
    with pytest.raises(SchemaError, match=r"'user': empty vocabulary.*min_count=10"):
        fit_schema(_samples(_schema(user_min_count=10)))


def test_encoded_batches_hand_computed(fitted):
    samples, encoder = fitted
    (full, label), = _batches(make_log_dataset(samples, encoder, 5))
    assert label.tolist() == [1, 0, 1, 0, 1]
    assert full["user"].tolist() == [2, 2, 2, 3, 3]
    assert full["item"].tolist() == [2, 4, 6, 5, 3]
    assert full["genres"].tolist() == [[3, 0], [4, 0], [4, 2], [2, 0], [2, 5]]
    np.testing.assert_allclose(full["hour"], (np.arange(1, 6) - 3) / np.sqrt(2), rtol=1e-6)
    assert full["history_length"].dtype == np.int32
    assert full["history_length"].tolist() == [1, 2, 3, 1, 0]
    # r2 keeps its 3 most recent steps (20 30 40); padding reads row 0.
    assert full["history_item"].tolist() == [[3, 0, 0], [3, 2, 0], [2, 4, 5], [2, 0, 0],
                                             [0, 0, 0]]
    assert full["history_genres"].tolist() == [
        [[2, 3], [0, 0], [0, 0]], [[2, 3], [3, 0], [0, 0]], [[3, 0], [4, 0], [2, 0]],
        [[3, 0], [0, 0], [0, 0]], [[0, 0], [0, 0], [0, 0]]]
    assert "history_negative_item" not in full
    first, second, third = _batches(make_log_dataset(samples, encoder, 2))
    # T is the batch's longest kept history.
    assert first[0]["history_item"].tolist() == [[3, 0], [3, 2]]
    assert second[0]["history_item"].tolist() == [[2, 4, 5], [2, 0, 0]]
    assert third[0]["history_item"].shape == (1, 0)
    assert third[0]["history_genres"].shape == (1, 0, 2)


def test_negatives_differ_from_the_step_and_carry_the_pool_items_genres(fitted):
    samples, encoder = fitted
    pool = samples.negatives["history"]
    pool_rows = encoder.encode_ids(encoder.schema.feature("item"), pool.items["item"]).numpy()
    pool_genres = encoder.encode_ids(encoder.schema.feature("genres"),
                                     pool.items["genres"]).numpy()
    genres_of = {int(r): g.tolist() for r, g in zip(pool_rows, pool_genres)}
    seen = set()
    passes = make_log_dataset(samples, encoder, 5, with_negatives=True, shuffle=True, seed=3,
                              pass_index=0, repeat=True).take(20)
    for features, _ in _batches(passes):
        real = np.arange(features["history_item"].shape[1]) < \
            features["history_length"][:, None]
        neg, neg_genres = features["history_negative_item"], \
            features["history_negative_genres"]
        assert neg.shape == features["history_item"].shape
        assert neg_genres.shape == features["history_genres"].shape
        assert np.all(neg[real] != features["history_item"][real])
        assert np.all(neg[~real] == 0) and np.all(neg_genres[~real] == 0)
        for row, genres in zip(neg[real], neg_genres[real]):
            assert genres.tolist() == genres_of[int(row)]
        seen.update(neg[real].tolist())
    assert seen == set(genres_of)  # every pool item is drawn, 77 as the OOV row 1


def test_tiny_pool_redraws_and_single_item_pool_is_an_error(fitted):
    _, encoder = fitted
    samples = _samples(pool_items=(10, 20), draws=(0, 0, 0, 0, 0, 0, 0, 1))
    (features, _), = _batches(make_log_dataset(samples, encoder, 5, with_negatives=True))
    steps = features["history_item"]
    ten_or_twenty = np.isin(steps, [3, 2])  # the pool's only other item is the negative
    assert ten_or_twenty.sum() == 5
    expected = np.where(steps == 3, 2, 3)
    assert np.array_equal(features["history_negative_item"][ten_or_twenty],
                          expected[ten_or_twenty])
    with pytest.raises(ValueError, match=r"with_negatives'=True.*'history' draws 1 distinct"):
        make_log_dataset(_samples(pool_items=(10, 20), draws=(1, 1)), encoder, 2,
                         with_negatives=True)


def test_order_and_negatives_are_a_function_of_seed_and_pass(fitted):
    samples, encoder = fitted

    def run(seed, p, **kwargs):
        return _batches(make_log_dataset(samples, encoder, 2, shuffle=True, seed=seed,
                                         pass_index=p, with_negatives=True, **kwargs))

    def same(a, b):
        return len(a) == len(b) and all(
            np.array_equal(fa[k], fb[k]) and np.array_equal(la, lb)
            for (fa, la), (fb, lb) in zip(a, b) for k in fa)

    ds = make_log_dataset(samples, encoder, 2, shuffle=True, seed=5, pass_index=2,
                          with_negatives=True)
    assert same(_batches(ds), _batches(ds))  # every iteration: the same pass 2
    assert same(run(5, 2), run(5, 2))
    assert not same(run(5, 2), run(5, 3))
    assert not same(run(5, 2), run(6, 2))
    order = np.concatenate([_row_ids(f) for f, _ in run(5, 2)])
    assert sorted(order.tolist()) == [0, 1, 2, 3, 4]
    # With repeat, pass 3 of a run started at pass 2 equals a run started at pass 3.
    stream = _batches(make_log_dataset(samples, encoder, 2, shuffle=True, seed=5,
                                       pass_index=2, with_negatives=True,
                                       repeat=True).take(6))
    assert same(stream[3:], run(5, 3))


def test_skip_batches_equals_dropping_batches(fitted):
    samples, encoder = fitted
    kwargs = dict(shuffle=True, seed=1, pass_index=0, with_negatives=True, repeat=True)
    whole = _batches(make_log_dataset(samples, encoder, 2, **kwargs).take(8))
    skipped = _batches(make_log_dataset(samples, encoder, 2, skip_batches=4, **kwargs).take(4))
    for (fa, la), (fb, lb) in zip(whole[4:], skipped):
        assert np.array_equal(la, lb)
        for key in fa:
            assert np.array_equal(fa[key], fb[key]), key
    with pytest.raises(ValueError, match=r"'skip_batches' goes past the single pass .*skip_batches=3"):
        make_log_dataset(samples, encoder, 2, pass_index=0, skip_batches=3)


@pytest.mark.parametrize("pass_index", [None, 0])
def test_sharding_partitions_rows(fitted, pass_index):
    samples, encoder = fitted
    shards = []
    for index in range(2):
        ds = make_log_dataset(samples, encoder, 2, shuffle=True, seed=4, pass_index=pass_index,
                              num_shards=2, shard_index=index)
        shards.append(sorted(np.concatenate([_row_ids(f) for f, _ in _batches(ds)]).tolist()))
    assert shards == [[0, 2, 4], [1, 3]]
    index = tf.Variable(1)  # a parameter-server worker's index: a tensor

    @tf.function
    def tensor_shard_rows():
        ds = make_log_dataset(samples, encoder, 8, shuffle=True, seed=4, pass_index=pass_index,
                              num_shards=2, shard_index=index.read_value())
        return next(iter(ds))[0]

    assert sorted(_row_ids(tensor_shard_rows()).tolist()) == shards[1]


def test_table_frequencies_hand_computed(fitted):
    samples, encoder = fitted
    counts = table_frequencies(samples, encoder, chunk_size=2)
    assert sorted(counts) == ["genres_embedding", "item_embedding", "user_embedding"]
    assert counts["user_embedding"].tolist() == [0, 0, 3, 2]
    # item rows 20 10 30 40 50: candidates 1 each; steps 10, 20 read twice, 30, 40, 20 once.
    assert counts["item_embedding"].tolist() == [0, 0, 4, 3, 2, 2, 1]
    # genres a b c Música: candidates 3 1 2 1; steps a 3, b 5, c 1 (weighted by windows).
    assert counts["genres_embedding"].tolist() == [0, 0, 6, 6, 3, 1]
    assert all(c.dtype == np.int64 for c in counts.values())
    # Values the encoder does not know count on the OOV row 1.
    unseen = dataclasses.replace(samples, columns={
        **samples.columns, "user": np.array([b"u1", b"u9", b"u9", b"u2", b"u2"])})
    assert table_frequencies(unseen, encoder)["user_embedding"].tolist() == [0, 2, 1, 2]


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(batch_size=0), "'batch_size' expected a positive int, got 0"),
    (dict(num_shards=2, shard_index=2), "'shard_index' expected 0 <= shard_index < "
                                        "num_shards=2, got 2"),
    (dict(skip_batches=1), "'skip_batches'=1 needs pass_index"),
    (dict(pass_index=-1), "'pass_index' expected an int >= 0 or None, got -1"),
    (dict(seed="7"), "'seed' expected an int, got '7'"),
])
def test_argument_errors(fitted, kwargs, fragment):
    samples, encoder = fitted
    kwargs = {"batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        make_log_dataset(samples, encoder, **kwargs)
