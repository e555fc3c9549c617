"""Readers for processed formats: DIN CSV/pickle, DIEN files, 5-core sequences,
MovieLens; the frequency table; the synthetic generator."""

import json
import os
import pickle

import numpy as np
import pytest

from din_tf import features as F
from din_tf.data import (din_files, din_protocol, dien_files, dien_protocol, five_core,
                         frequency, movielens, synthetic)
from din_tf.data._io import DataFormatError
from din_tf.data.samples import Samples
from tests.data.helpers import write_lines

# ---------------------------------------------------------------- DIN processed files

TRAIN = ['104,"[3, 1]",2,1', '104,"[3, 1]",0,0', '7,[4],1,1']
TEST = ['104,"[3, 1, 2]","(4, 0)"', '7,"[4, 1]","(3, 2)"']
CATES = ["1", "0", "2", "1", "0"]


@pytest.mark.parametrize("gz", [False, True])
def test_din_csv(tmp_path, gz):
    paths = [write_lines(tmp_path / n, lines, gz) for n, lines in
             (("train_set.csv", TRAIN), ("test_set.csv", TEST), ("cate_list.csv", CATES))]
    data = din_files.load_din_csv(*paths)
    assert data.n_items == 5 and data.n_categories == 3 and data.n_users == 105
    np.testing.assert_array_equal(data.train.item_id, [2, 0, 1])
    np.testing.assert_array_equal(data.train.category_id, [2, 1, 0])
    np.testing.assert_array_equal(data.train.history(0)[0], [3, 1])
    np.testing.assert_array_equal(data.train.history(0)[1], [1, 0])
    np.testing.assert_array_equal(data.test.item_id, [4, 0, 3, 2])
    np.testing.assert_array_equal(data.test.label, [1, 0, 1, 0])
    np.testing.assert_array_equal(data.test.history(3)[0], [4, 1])


@pytest.mark.parametrize("which, bad, fragment", [
    ("train", '104,"[3, x]",2,1', "expected user"),
    ("train", '104,"[3, 1]",2,3', "expected user"),
    ("train", '104,"[3, 9]",2,1', "item id 9 is outside cate_list"),
    ("test", '104,"[3]",4', "positive, negative"),
])
def test_din_csv_malformed(tmp_path, which, bad, fragment):
    train = TRAIN + [bad] if which == "train" else TRAIN
    test = TEST + [bad] if which == "test" else TEST
    paths = [write_lines(tmp_path / n, lines) for n, lines in
             (("train_set.csv", train), ("test_set.csv", test), ("cate_list.csv", CATES))]
    n = len(train) if which == "train" else len(test)
    with pytest.raises(DataFormatError, match=f"{which}_set.csv, line {n}: .*{fragment}"):
        din_files.load_din_csv(*paths)


def test_din_cate_list_and_empty(tmp_path):
    with pytest.raises(DataFormatError, match="line 2: expected a category id"):
        din_files.read_cate_list(write_lines(tmp_path / "c.csv", ["1", "a"]))
    with pytest.raises(DataFormatError, match="no categories"):
        din_files.read_cate_list(write_lines(tmp_path / "e.csv", []))
    with pytest.raises(DataFormatError, match="four pickled objects"):
        din_files.load_din_pickle(write_lines(tmp_path / "x.pkl", ["junk"]))


# ---------------------------------------------------------------- DIEN processed files

VOC = dict(uid={"uA": 0, "uB": 1}, mid={"default_mid": 0, "m1": 1, "m2": 2, "m3": 3},
           cat={"default_cat": 0, "c1": 1, "c2": 2})
SPLIT = ["0\tuA\tm3\tc2\tm1\x02m2\tc1\x02c1", "1\tuA\tm2\tc1\tm1\x02m2\tc1\x02c1",
         "0\tuZ\tm9\tc9\tm1\x02mX\tc1\x02cX"]


def _write_dien(tmp_path, gz=False, split=SPLIT, pickle_voc=True):
    for k, voc in VOC.items():
        with open(tmp_path / f"{k}_voc.pkl", "wb") as f:
            if pickle_voc:
                pickle.dump(voc, f, protocol=2)
            else:
                f.write(json.dumps(voc).encode())
    write_lines(tmp_path / "local_train_splitByUser", split, gz)
    write_lines(tmp_path / "local_test_splitByUser", split[:2], gz)
    write_lines(tmp_path / "item-info", ["m1\tc1", "m2\tc1", "m3\tc2", "m1\tc2", "mX\tc1"], gz)
    write_lines(tmp_path / "reviews-info", ["uA\tm1\t5.0\t1", "uA\tm2\t4.0\t2", "uB\tm3\t5.0\t3",
                                            "uB\tmZ\t5.0\t4"], gz)


@pytest.mark.parametrize("gz, pickle_voc", [(False, True), (True, False)])
def test_dien_files(tmp_path, gz, pickle_voc):
    _write_dien(tmp_path, gz, pickle_voc=pickle_voc)
    data = dien_files.load_dien_dir(tmp_path)
    train = data.train
    np.testing.assert_array_equal(train.label, [0, 1, 0])
    np.testing.assert_array_equal(train.user_id, [0, 0, 0])  # uZ unknown -> 0
    np.testing.assert_array_equal(train.item_id, [3, 2, 0])  # m9 unknown -> 0
    np.testing.assert_array_equal(train.category_id, [2, 1, 0])
    np.testing.assert_array_equal(train.history(2)[0], [1, 0])  # mX unknown -> 0
    np.testing.assert_array_equal(train.history(2)[1], [1, 0])
    assert (data.n_users, data.n_items, data.n_categories) == (2, 4, 3)
    np.testing.assert_array_equal(data.sampler.pool, [1, 2, 3, 0])  # mZ unknown -> 0
    np.testing.assert_array_equal(data.sampler.item_category, [0, 1, 1, 2])  # first m1 wins


@pytest.mark.parametrize("bad, fragment", [
    ("1\tuA\tm2\tc1\tm1", "expected 6 tab-separated fields"),
    ("2\tuA\tm2\tc1\tm1\tc1", "clk"),
    ("1\tuA\tm2\tc1\tm1\x02m2\tc1", "as many categories"),
])
def test_dien_split_malformed(tmp_path, bad, fragment):
    _write_dien(tmp_path, split=SPLIT + [bad])
    path = os.path.join(tmp_path, "local_train_splitByUser")
    with pytest.raises(DataFormatError, match=f"line 4: .*{fragment}") as info:
        dien_files.load_dien_dir(tmp_path)
    assert info.value.path == path
    with pytest.warns(UserWarning, match="skipped 1"):
        assert len(dien_files.load_dien_dir(tmp_path, skip_malformed=True).train) == 3


def test_dien_other_files_malformed_and_empty(tmp_path):
    with pytest.raises(DataFormatError, match="line 2: expected 2 tab-separated"):
        dien_files.read_item_info(write_lines(tmp_path / "ii", ["a\tb", "a b"]))
    with pytest.raises(DataFormatError, match="line 1: expected 4 tab-separated"):
        dien_files.read_reviews_info(write_lines(tmp_path / "ri", ["u\ta\t5.0"]))
    with pytest.raises(DataFormatError, match="no samples"):
        dien_files.read_split(write_lines(tmp_path / "s", []), {}, {}, {})
    bad = tmp_path / "v.pkl"
    bad.write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataFormatError, match="pickled or JSON dict"):
        dien_files.load_vocab(bad)


# ---------------------------------------------------------------- 5-core

def test_five_core(tmp_path):
    seq = write_lines(tmp_path / "Toy.txt", ["1 1 2 3 4 5", "2 2 3 1 4 6"])
    attrs = tmp_path / "Toy_item2attributes.json"
    attrs.write_text(json.dumps({str(i): [9, i % 3] for i in range(1, 7)}))
    reviews, cats = five_core.read_five_core(seq, attrs)
    assert reviews.item[:5] == ["1", "2", "3", "4", "5"] and reviews.time[:3].tolist() == [0, 1, 2]
    assert cats["4"] == "1"  # last attribute
    ds = din_protocol.build(reviews, cats)
    assert ds.counts == dict(n_users=2, n_items=6, n_categories=3, example_count=10)
    files = dien_protocol.build(reviews, cats)
    assert len(files.train_lines) + len(files.test_lines) == 4


def test_five_core_malformed(tmp_path):
    seq = write_lines(tmp_path / "T.txt", ["1 1 2 3", "2 x 3", "3"])
    with pytest.raises(DataFormatError, match="line 2: expected 'user item_1"):
        five_core.read_sequences(seq)
    with pytest.warns(UserWarning, match="skipped 2"):
        assert len(five_core.read_sequences(seq, skip_malformed=True)) == 3
    attrs = tmp_path / "a.json"
    attrs.write_text('{"1": [1, 2],\n "2": [3,}')
    with pytest.raises(DataFormatError, match="line 2: expected a JSON object"):
        five_core.read_item_attributes(attrs)


# ---------------------------------------------------------------- MovieLens

def _genre_flags(i):
    flags = ["0"] * 19
    flags[i] = "1"
    return "|".join(flags)


def test_movielens_100k(tmp_path):
    write_lines(tmp_path / "u.data", ["1\t10\t4\t100", "1\t11\t2\t50", "2\t10\t5\t70"])
    write_lines(tmp_path / "u.item", [f"10|Toy Story (1995)|01-Jan-1995||http://x|{_genre_flags(3)}",
                                      f"11|Caf\u00e9 (1996)|01-Jan-1996||http://y|{'|'.join(['0'] * 19)}"])
    reviews, cats = movielens.read_movielens(tmp_path)
    assert reviews.user == ["1", "1", "2"] and reviews.time.tolist() == [100, 50, 70]
    assert cats == {"10": "Animation", "11": "unknown"}
    assert len(movielens.read_movielens(tmp_path, min_rating=4)[0]) == 2
    write_lines(tmp_path / "u.data", ["1\t10\t4\t100", "1\t11\tfour\t50"])
    with pytest.raises(DataFormatError, match="u.data, line 2"):
        movielens.read_movielens(tmp_path)


def test_movielens_1m_and_20m(tmp_path):
    d1 = tmp_path / "ml1m"
    d1.mkdir()
    write_lines(d1 / "ratings.dat", ["1::1193::5::978300760", "1::661::3::978302109"])
    write_lines(d1 / "movies.dat", ["1193::One Flew (1975)::Drama", "661::James (1996)::"
                                    "Animation|Children's|Musical"])
    reviews, cats = movielens.read_movielens(d1)
    assert reviews.item == ["1193", "661"] and cats["661"] == "Animation"
    d2 = tmp_path / "ml20m"
    d2.mkdir()
    write_lines(d2 / "ratings.csv", ["userId,movieId,rating,timestamp", "1,2,3.5,1112486027"])
    write_lines(d2 / "movies.csv", ["movieId,title,genres",
                                    '2,"Jumanji, The (1995)",Adventure|Children|Fantasy',
                                    "3,Nothing (2000),(no genres listed)"])
    reviews, cats = movielens.read_movielens(d2)
    assert reviews.rating.tolist() == [3.5] and cats == {"2": "Adventure",
                                                         "3": "(no genres listed)"}
    write_lines(d2 / "movies.csv", ["movieId,title,genres", "x,y"])
    with pytest.raises(DataFormatError, match="movies.csv, line 2"):
        movielens.read_movielens(d2)
    with pytest.raises(ValueError, match="directory"):
        movielens.read_movielens(tmp_path)


# ---------------------------------------------------------------- frequencies

def test_feature_frequencies_match_brute_force():
    rng = np.random.default_rng(0)
    seq = rng.integers(0, 20, 50)
    starts = rng.integers(0, 30, 40)
    lengths = rng.integers(0, 20, 40)
    s = Samples(user_id=rng.integers(0, 7, 40), item_id=rng.integers(0, 20, 40),
                category_id=rng.integers(0, 4, 40), label=np.ones(40), history_start=starts,
                history_length=lengths, steps_item_id=seq, steps_category_id=seq % 4)
    freq = frequency.feature_frequencies(s, n_items=25)
    items = np.concatenate([s.item_id] + [s.history(i)[0] for i in range(40)])
    cats = np.concatenate([s.category_id] + [s.history(i)[1] for i in range(40)])
    np.testing.assert_array_equal(freq[F.ITEM_ID], np.bincount(items, minlength=25))
    np.testing.assert_array_equal(freq[F.CATEGORY_ID], np.bincount(cats, minlength=4))
    np.testing.assert_array_equal(freq[F.USER_ID], np.bincount(s.user_id))
    only = frequency.feature_frequencies(s, include_history=False)
    np.testing.assert_array_equal(only[F.ITEM_ID], np.bincount(s.item_id))
    with pytest.raises(ValueError, match="item_id"):
        frequency.feature_frequencies(s, n_items=3)


# ---------------------------------------------------------------- synthetic generator

def test_synthetic_small_is_deterministic_and_readable(tmp_path):
    from din_tf.data import amazon
    cfg = synthetic.SyntheticConfig(n_users=300, seed=5, n_categories=6,
                                     items_per_category=20, taste_width=4)
    a, b = synthetic.generate(cfg), synthetic.generate(cfg)
    np.testing.assert_array_equal(a.item, b.item)
    paths = synthetic.write_raw(a, tmp_path)
    first = [open(p, "rb").read() for p in paths]
    synthetic.write_raw(b, tmp_path)
    assert first == [open(p, "rb").read() for p in paths]  # byte-identical
    reviews, meta = amazon.read_amazon(*paths)
    assert len(reviews) == len(a.user)
    counts = np.bincount(np.unique(np.stack([a.user, a.item]), axis=1)[1])
    assert counts[counts > 0].min() >= 5 and np.bincount(a.user)[np.unique(a.user)].min() >= 5
    ds = din_protocol.build(reviews, amazon.item_categories(meta, amazon.din_category))
    report = synthetic.proxy_report(ds.test_samples())
    assert 0.5 < report["pooling_category"] < report["recency_category"]
