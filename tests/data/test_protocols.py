"""DIN and DIEN protocols on raw-format fixtures, their files, and atomic output."""

import os
import pickle

import numpy as np
import pytest

from din_tf.data import amazon, din_files, din_protocol, dien_files, dien_protocol, prepare
from din_tf.data._io import DataFormatError
from tests.data import amazon_fixtures as fx


def _sorted_histories():
    return {u: [a for a, _ in sorted(v, key=lambda x: x[1])] for u, v in fx.HISTORIES.items()}


def _inputs(tmp_path, rule, gz=False):
    r, m = fx.write_amazon(tmp_path, gz=gz)
    reviews, meta = amazon.read_amazon(r, m)
    return reviews, amazon.item_categories(meta, rule)


# ---------------------------------------------------------------- DIN

@pytest.mark.parametrize("gz", [False, True])
def test_din_protocol_structure(tmp_path, gz):
    reviews, cats = _inputs(tmp_path, amazon.din_category, gz)
    ds = din_protocol.build(reviews, cats, seed=1)
    assert ds.user_keys == sorted(fx.HISTORIES)
    assert ds.item_keys == sorted(fx.CATEGORIES)  # unreviewed meta item excluded
    assert ds.category_keys == sorted({c[-1][-1] for c in fx.CATEGORIES.values()})
    assert ds.category_keys[ds.cate_list[ds.item_keys.index("I1")]] == "Sale"  # last path
    assert ds.counts == dict(n_users=6, n_items=10, n_categories=5, example_count=21)
    hist = _sorted_histories()
    lengths = {u: len(h) for u, h in hist.items()}
    # Two training rows per behaviour 1..n-2, one test row per user with n >= 2.
    assert len(ds.train_user) == sum(2 * max(n - 2, 0) for n in lengths.values())
    assert sorted(ds.test_user.tolist()) == [i for i, u in enumerate(ds.user_keys)
                                             if lengths[u] >= 2]
    item = lambda ids: [ds.item_keys[i] for i in ids]
    train = ds.train_samples()
    for r in range(len(train)):
        u = ds.user_keys[train.user_id[r]]
        h, _ = train.history(r)
        k = len(h)
        assert 1 <= k <= lengths[u] - 2
        assert item(h) == hist[u][:k]
        if train.label[r] == 1:
            assert item([train.item_id[r]]) == [hist[u][k]]
        else:
            assert item([train.item_id[r]])[0] not in hist[u]
        assert train.category_id[r] == ds.cate_list[train.item_id[r]]
    test = ds.test_samples()
    for r in range(0, len(test), 2):
        u = ds.user_keys[test.user_id[r]]
        assert item(test.history(r)[0]) == hist[u][:-1]
        assert item([test.item_id[r]]) == [hist[u][-1]] and test.label[r] == 1
        assert item([test.item_id[r + 1]])[0] not in hist[u] and test.label[r + 1] == 0


def test_din_protocol_seed(tmp_path):
    reviews, cats = _inputs(tmp_path, amazon.din_category)
    a, b, c = (din_protocol.build(reviews, cats, seed=s) for s in (5, 5, 6))
    for name in ("train_user", "train_item", "train_length", "test_negative"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not all(np.array_equal(getattr(a, n), getattr(c, n))
                   for n in ("train_user", "train_item", "test_negative"))


def test_din_missing_meta(tmp_path):
    reviews, cats = _inputs(tmp_path, amazon.din_category)
    del cats["I10"]
    with pytest.raises(ValueError, match="'I10'.*missing_category='drop'"):
        din_protocol.build(reviews, cats)
    ds = din_protocol.build(reviews, cats, missing_category="drop")
    assert "I10" not in ds.item_keys and ds.counts["example_count"] == 20


def test_din_write_and_read_back(tmp_path):
    reviews, cats = _inputs(tmp_path, amazon.din_category)
    ds = din_protocol.build(reviews, cats, seed=2)
    out = tmp_path / "din"
    din_protocol.write(ds, out, write_pickle=True)
    assert sorted(os.listdir(out)) == sorted([
        "train_set.csv", "test_set.csv", "cate_list.csv", "counts.json", "item_keys.txt",
        "category_keys.txt", "user_keys.txt", "dataset.pkl"])
    for loaded in (din_files.load_din_dir(out), din_files.load_din_pickle(out / "dataset.pkl")):
        for mine, theirs in ((ds.train_samples(), loaded.train), (ds.test_samples(), loaded.test)):
            for name in ("user_id", "item_id", "category_id", "label", "history_length"):
                np.testing.assert_array_equal(getattr(mine, name), getattr(theirs, name))
            for r in range(len(mine)):
                np.testing.assert_array_equal(mine.history(r)[0], theirs.history(r)[0])
                np.testing.assert_array_equal(mine.history(r)[1], theirs.history(r)[1])
        np.testing.assert_array_equal(loaded.cate_list, ds.cate_list)
        assert loaded.n_items == 10 and loaded.n_categories == 5 and loaded.n_users == 6


# ---------------------------------------------------------------- DIEN

def _split_lines(files):
    return [l.split("\t") for l in files.train_lines + files.test_lines]


@pytest.mark.parametrize("gz", [False, True])
def test_dien_protocol_structure(tmp_path, gz):
    reviews, cats = _inputs(tmp_path, amazon.dien_category, gz)
    files = dien_protocol.build(reviews, cats, seed=0)
    assert "I1\tAudio" in files.item_info and "I4\tCamera" in files.item_info  # first path
    assert len(files.reviews_info) == len(reviews)
    assert files.reviews_info[0] == "U1\tI3\t5.0\t30"
    hist = _sorted_histories()
    lines = _split_lines(files)
    eligible = {u for u, h in hist.items() if len(h) >= 2}
    assert len(lines) == 2 * len(eligible)
    seen = set()
    for neg, pos in zip(lines[0::2], lines[1::2]):
        assert neg[0] == "0" and pos[0] == "1" and neg[1] == pos[1]
        u = pos[1]
        seen.add(u)
        assert pos[2] == hist[u][-1] and neg[2] != pos[2]
        assert pos[4].split("\x02") == hist[u][:-1] == neg[4].split("\x02")
        assert pos[5].split("\x02") == [cats[a] for a in hist[u][:-1]]
        assert pos[3] == cats[pos[2]] and neg[3] == cats[neg[2]]
    assert seen == eligible
    train_users = {l.split("\t")[1] for l in files.train_lines}
    test_users = {l.split("\t")[1] for l in files.test_lines}
    assert not train_users & test_users


def test_dien_vocabularies():
    lines = ["0\tu1\tm9\tc1\tm1\x02m2\tc1\x02c2", "1\tu1\tm3\tc2\tm1\x02m2\tc1\x02c2",
             "0\tu2\tm2\tc2\tm1\tc1", "1\tu2\tm1\tc1\tm1\tc1"]
    uid, mid, cat = dien_protocol.vocabularies(lines)
    assert uid == {"u1": 0, "u2": 1}  # tie broken by first appearance; no default
    # counts: m1 4, m2 3, m9 1, m3 1
    assert mid == {"default_mid": 0, "m1": 1, "m2": 2, "m9": 3, "m3": 4}
    assert cat == {"default_cat": 0, "c1": 1, "c2": 2}


def test_dien_default_cat_quirk():
    # An item without meta gets category 'default_cat', which is then renumbered.
    lines = ["1\tu1\tm1\tdefault_cat\tm2\tdefault_cat"]
    _, _, cat = dien_protocol.vocabularies(lines)
    assert cat == {"default_cat": 1}
    assert dien_files.vocab_size(cat) == 2


def test_dien_seed(tmp_path):
    reviews, cats = _inputs(tmp_path, amazon.dien_category)
    a, b = (dien_protocol.build(reviews, cats, seed=3) for _ in range(2))
    assert a.train_lines == b.train_lines and a.test_lines == b.test_lines
    others = [dien_protocol.build(reviews, cats, seed=s) for s in range(4, 12)]
    assert any(o.train_lines + o.test_lines != a.train_lines + a.test_lines for o in others)


def _activity_ordered_reviews(users):
    """Reviews listed user by user, each user with one more review than the
    previous one: a file whose user order correlates with history length."""
    user, item, time = [], [], []
    for u in range(users):
        for k in range(2 + u):
            user.append(f"U{u:04d}")
            item.append(f"I{(u + k) % 50}")
            time.append(k)
    reviews = amazon.Reviews(user, item, np.full(len(user), 5.0), np.array(time), "log")
    return reviews, {f"I{i}": f"C{i % 7}" for i in range(50)}


def test_dien_users_are_shuffled_by_the_seed():
    """The DIEN repo trains in file order: a user order that follows the source
    file would make history length drift along the epoch. Users are written in
    a seeded random order, not in order of appearance."""
    reviews, cats = _activity_ordered_reviews(users=120)
    users_in = lambda f: list(dict.fromkeys(l.split("\t")[1] for l in f.train_lines))
    a, b, c = (dien_protocol.build(reviews, cats, seed=s) for s in (7, 7, 8))
    order = users_in(a)
    assert order == users_in(b) and order != users_in(c)
    appearance = [u for u in dict.fromkeys(reviews.user) if u in set(order)]
    assert sorted(order) == sorted(appearance) and order != appearance
    lengths = [len(l.split("\t")[4].split("\x02")) for l in a.train_lines[1::2]]
    rank_correlation = np.corrcoef(np.arange(len(lengths)), np.argsort(np.argsort(lengths)))[0, 1]
    assert abs(rank_correlation) < 0.3, rank_correlation


def test_dien_write_and_load(tmp_path):
    reviews, cats = _inputs(tmp_path, amazon.dien_category)
    # Find a seed that puts at least one user in the test split.
    files = next(f for f in (dien_protocol.build(reviews, cats, seed=s) for s in range(100))
                 if f.test_lines)
    out = tmp_path / "dien"
    dien_protocol.write(files, out)
    assert sorted(os.listdir(out)) == sorted([
        "item-info", "reviews-info", "local_train_splitByUser", "local_test_splitByUser",
        "uid_voc.pkl", "mid_voc.pkl", "cat_voc.pkl"])
    with open(out / "mid_voc.pkl", "rb") as f:
        assert pickle.load(f) == files.mid_voc
    data = dien_files.load_dien_dir(out)
    assert len(data.train) == len(files.train_lines) and len(data.test) == len(files.test_lines)
    assert (data.test.user_id == 0).all()  # test users are unknown to uid_voc
    first = files.train_lines[1].split("\t")
    assert data.train.item_id[1] == files.mid_voc[first[2]]
    np.testing.assert_array_equal(data.train.history(1)[0],
                                  [files.mid_voc[m] for m in first[4].split("\x02")])
    assert data.n_items == len(files.mid_voc) and data.n_categories == len(files.cat_voc)
    # The negative pool has one entry per review line, with categories from item-info.
    assert data.sampler.pool.size == len(reviews)
    i1 = files.mid_voc.get("I1")
    if i1 is not None:
        assert data.sampler.item_category[i1] == files.cat_voc["Audio"]


# ---------------------------------------------------------------- atomic output and CLI

def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    reviews, cats = _inputs(tmp_path, amazon.dien_category)
    files = dien_protocol.build(reviews, cats)
    out = tmp_path / "out"

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pickle, "dump", boom)  # fails after the text files are written
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(OSError, match="disk full"):
        dien_protocol.write(files, out)
    # A new output folder is staged beside it: neither it nor the stage is left.
    assert sorted(os.listdir(tmp_path)) == before
    out.mkdir()  # into an existing folder: nothing of the failed write is moved in
    ds = din_protocol.build(*_inputs(tmp_path, amazon.din_category))
    with pytest.raises(OSError, match="disk full"):
        din_protocol.write(ds, out, write_pickle=True)
    assert os.listdir(out) == []


def test_prepare_run_and_failure_on_malformed_input(tmp_path):
    r, m = fx.write_amazon(tmp_path, gz=True)
    counts = prepare.run("din", tmp_path / "o1", reviews=r, meta=m)
    assert counts["n_users"] == 6
    counts = prepare.run("dien", tmp_path / "o2", reviews=r, meta=m, seed=1)
    assert counts["train_users"] + counts["test_users"] == 5
    lines = fx.review_lines() + ["oops"]
    r2, _ = fx.write_amazon(tmp_path / "..", reviews=lines)
    with pytest.raises(DataFormatError, match=f"line {len(lines)}"):
        prepare.run("dien", tmp_path / "o3", reviews=r2, meta=m)
    assert not os.path.exists(tmp_path / "o3") or os.listdir(tmp_path / "o3") == []
    with pytest.raises(ValueError, match="exactly one input"):
        prepare.run("din", tmp_path / "o4")
