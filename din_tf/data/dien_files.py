"""Readers for the DIEN authors' processed files (and our `dien_protocol` output):
`local_{train,test}_splitByUser`, `{uid,mid,cat}_voc.pkl`, `reviews-info`,
`item-info`. Ids are looked up as the original `DataIterator` does.

Unknown strings map to id 0, as in the original (`default_mid`/`default_cat`
for items and categories; for users, 0 is simply the most frequent training
user, so every test user — unknown by construction of the split — shares it).
An empty history field is read as one unknown step (the original splits ''
into ['']), which our protocol never writes.
"""

import dataclasses
import json
import os
import pickle

import numpy as np

from din_tf.data._io import DataFormatError, MalformedLines, describe, iter_lines, \
    require_nonempty
from din_tf.data.pipeline import NegativeSampler
from din_tf.data.samples import Samples

SEP = "\x02"


def load_vocab(path):
    """A `{key: id}` vocabulary from a pickle (Python 2 or 3) or JSON file."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        voc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        try:
            voc = pickle.loads(raw, encoding="latin1")
        except Exception as e:  # pickle raises many types on corrupt input
            raise DataFormatError(path, None, f"expected a pickled or JSON dict, got an "
                                              f"unreadable file ({type(e).__name__}: {e})") from None
    if not isinstance(voc, dict) or not all(isinstance(v, int) for v in voc.values()):
        raise DataFormatError(path, None, f"expected a dict of str -> int, got "
                                          f"{type(voc).__name__}")
    return {(k.decode("utf-8") if isinstance(k, bytes) else k): v for k, v in voc.items()}


def vocab_size(voc):
    """Embedding rows needed: max id + 1 (equals len(voc) unless a key named like
    the default was renumbered, which leaves id 0 unused and the ids one past
    len(voc); the original sized the tables with len(voc))."""
    return max(voc.values()) + 1 if voc else 0


def read_item_info(path, skip_malformed=False):
    """`item-info` → `{asin: category}` (first occurrence wins, as coded)."""
    out = {}
    with MalformedLines(path, skip_malformed) as bad:
        for number, text in iter_lines(path):
            fields = text.split("\t")
            if len(fields) != 2 or not fields[0]:
                bad.handle(number, f"expected 2 tab-separated fields (asin, category), got "
                                   f"{describe(text)}")
                continue
            out.setdefault(fields[0], fields[1])
    require_nonempty(path, len(out), "item-info lines")
    return out


def read_reviews_info(path, skip_malformed=False):
    """`reviews-info` → list of asins, one per line (the negative-sampling pool)."""
    asins = []
    with MalformedLines(path, skip_malformed) as bad:
        for number, text in iter_lines(path):
            fields = text.split("\t")
            if len(fields) != 4 or not fields[1]:
                bad.handle(number, "expected 4 tab-separated fields (user, asin, rating, time), "
                                   f"got {describe(text)}")
                continue
            asins.append(fields[1])
    require_nonempty(path, len(asins), "reviews-info lines")
    return asins


def read_split(path, uid_voc, mid_voc, cat_voc, skip_malformed=False):
    """A `local_*_splitByUser` file → `Samples` (file order, unknown ids → 0).

    Each line: `clk \\t uid \\t mid \\t cat \\t mid_hist \\t cat_hist`, histories
    joined with Ctrl-B and of equal length, clk 0 or 1.
    """
    users, items, cats, labels, hist_items, hist_cats = [], [], [], [], [], []
    with MalformedLines(path, skip_malformed) as bad:
        for number, text in iter_lines(path):
            fields = text.split("\t")
            if len(fields) != 6:
                bad.handle(number, f"expected 6 tab-separated fields (clk, uid, mid, cat, "
                                   f"mid_hist, cat_hist), got {len(fields)}: {describe(text)}")
                continue
            if fields[0] not in ("0", "1"):
                bad.handle(number, f"field 1 (clk): expected 0 or 1, got {describe(fields[0])}")
                continue
            mids, cs = fields[4].split(SEP), fields[5].split(SEP)
            if len(mids) != len(cs):
                bad.handle(number, f"history: expected as many categories as items, got "
                                   f"{len(mids)} items and {len(cs)} categories")
                continue
            labels.append(float(fields[0]))
            users.append(uid_voc.get(fields[1], 0))
            items.append(mid_voc.get(fields[2], 0))
            cats.append(cat_voc.get(fields[3], 0))
            hist_items.append([mid_voc.get(m, 0) for m in mids])
            hist_cats.append([cat_voc.get(c, 0) for c in cs])
    require_nonempty(path, len(labels), "samples")
    return Samples.from_lists(users, items, cats, labels, hist_items, hist_cats)


def negative_sampler(item_info, reviews_asins, mid_voc, cat_voc, num_negatives=5):
    """The iterator's negative pool (`mid_list_for_random`) and item→category map.

    Items without an `item-info` line get category 0 (the original raises
    KeyError if one is drawn). Item 0 gets category 0; in the original it gets
    the category of whichever out-of-vocabulary item came last in dict order.
    """
    n_items = max(vocab_size(mid_voc), 1)
    item_category = np.zeros(n_items, np.int32)
    for asin, cat in item_info.items():
        mid = mid_voc.get(asin, 0)
        if mid:
            item_category[mid] = cat_voc.get(cat, 0)
    pool = np.fromiter((mid_voc.get(a, 0) for a in reviews_asins), np.int32, len(reviews_asins))
    return NegativeSampler(pool=pool, item_category=item_category, num_negatives=num_negatives)


@dataclasses.dataclass
class DienData:
    train: Samples
    test: Samples
    sampler: NegativeSampler
    n_users: int
    n_items: int
    n_categories: int
    uid_voc: dict
    mid_voc: dict
    cat_voc: dict


def load_dien_dir(directory, skip_malformed=False, num_negatives=5):
    """Loads a directory of DIEN files (as `dien_protocol.write` or the authors'
    `prepare_data.sh` leaves it). Sizes are `vocab_size` of each vocabulary."""
    p = lambda name: os.path.join(os.fspath(directory), name)
    uid_voc, mid_voc, cat_voc = (load_vocab(p(f"{k}_voc.pkl")) for k in ("uid", "mid", "cat"))
    train = read_split(p("local_train_splitByUser"), uid_voc, mid_voc, cat_voc, skip_malformed)
    test = read_split(p("local_test_splitByUser"), uid_voc, mid_voc, cat_voc, skip_malformed)
    sampler = negative_sampler(read_item_info(p("item-info"), skip_malformed),
                               read_reviews_info(p("reviews-info"), skip_malformed),
                               mid_voc, cat_voc, num_negatives)
    return DienData(train, test, sampler, vocab_size(uid_voc), vocab_size(mid_voc),
                    vocab_size(cat_voc), uid_voc, mid_voc, cat_voc)
