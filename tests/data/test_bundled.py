"""The committed default dataset in data/: format, size, and an end-to-end pass
through the DIEN protocol, its readers and the tf.data input."""

import os

import numpy as np
import pytest

from din_tf import features as F
from din_tf.data import amazon, dien_files, dien_protocol, make_dataset

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data")
REVIEWS = os.path.join(DATA, "reviews_Synthetic_5.json.gz")
META = os.path.join(DATA, "meta_Synthetic.json.gz")


@pytest.fixture(scope="module")
def raw():
    return amazon.read_amazon(REVIEWS, META)


def test_size_and_counts(raw):
    assert os.path.getsize(REVIEWS) + os.path.getsize(META) <= 5 * 2 ** 20
    reviews, meta = raw
    assert len(reviews) == 280125 and len(set(reviews.user)) == 20000 and len(meta) == 2400
    _, counts = np.unique(np.asarray(reviews.item), return_counts=True)
    assert counts.min() >= 5  # 5-core


def test_end_to_end_dien(raw, tmp_path):
    reviews, meta = raw
    files = dien_protocol.build(reviews, amazon.item_categories(meta, amazon.dien_category))
    assert files.counts == dict(train_users=17974, test_users=2026, n_users=17974,
                                n_items=2401, n_categories=13)
    dien_protocol.write(files, tmp_path)
    data = dien_files.load_dien_dir(tmp_path)
    ds = make_dataset(data.train, 128, maxlen=100, negatives=data.sampler, shuffle=True)
    feats, label = next(iter(ds))
    assert feats[F.NEGATIVE_ITEM_IDS].shape[:2] == feats[F.HISTORY_ITEM_IDS].shape
    assert label.shape == (128,)
