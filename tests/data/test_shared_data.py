"""Protocols and readers on the research-only datasets in ../shared/data.

Marked `shared_data`: excluded from the default run (pytest.ini), run with
`pytest -m shared_data tests/data`; skipped when the folder is absent.
"""

import os

import numpy as np
import pytest

from din_tf.data import din_files, din_protocol, dien_files, dien_protocol, five_core, movielens
from tests.data.conftest import SHARED_DATA

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def beauty():
    d = os.path.join(SHARED_DATA, "amazon-2014-5core-beauty-sports")
    return five_core.read_five_core(os.path.join(d, "Beauty.txt"),
                                    os.path.join(d, "Beauty_item2attributes.json"))


def test_din_protocol_on_beauty(beauty):
    reviews, cats = beauty
    ds = din_protocol.build(reviews, cats)
    assert ds.counts == dict(n_users=22363, n_items=12101, n_categories=195,
                             example_count=198502)
    assert len(ds.test_user) == 22363
    assert len(ds.train_user) == 2 * (198502 - 2 * 22363)


def test_dien_protocol_on_beauty(beauty, tmp_path):
    reviews, cats = beauty
    files = dien_protocol.build(reviews, cats, seed=0)
    c = files.counts
    assert c["train_users"] + c["test_users"] == 22363
    assert 0.08 < c["test_users"] / 22363 < 0.12
    assert c["uid_voc"] == c["train_users"]
    assert 11000 < c["mid_voc"] <= 12102 and 150 < c["cat_voc"] <= 196
    dien_protocol.write(files, tmp_path)
    data = dien_files.load_dien_dir(tmp_path)
    assert len(data.train) == 2 * c["train_users"] and (data.test.user_id == 0).all()
    assert data.sampler.pool.size == 198502


def test_din_authors_sample():
    d = os.path.join(SHARED_DATA, "amazon-electronics-din-sample")
    data = din_files.load_din_csv(*(os.path.join(d, n) for n in (
        "train_set_mini.csv", "test_set_mini.csv", "cate_list.csv")))
    assert len(data.train) == 10000 and int(data.train.label.sum()) == 4980
    assert len(np.unique(data.train.user_id)) == 9472
    assert len(data.test) == 2 * 5000
    assert data.n_items == 63001 and data.n_categories == 801


def test_movielens_100k():
    reviews, cats = movielens.read_movielens(os.path.join(SHARED_DATA, "movielens-100k"))
    assert len(reviews) == 100000 and len(set(reviews.user)) == 943
    assert len(set(reviews.item)) == 1682 and len(cats) == 1682
    ds = din_protocol.build(reviews, cats)
    assert ds.counts["n_users"] == 943 and ds.counts["n_items"] == 1682
