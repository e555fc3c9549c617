"""The DIEN repo's Amazon protocol: `process_data` → `local_aggretor`
→ `split_by_user` → `generate_voc`, producing the files its `DataIterator` reads
(docs/original_code.md#data-protocol-of-the-dien-repo).

As coded in the original:

* `item-info`: `asin \\t category`, category = last element of the **first**
  category path; `reviews-info`: `user \\t asin \\t rating \\t time` per review
  line, in file order.
* Per user, behaviours sorted by time (stable). Each behaviour gets a negative
  drawn uniformly from the asins of all review lines (so popularity-weighted),
  redrawn only when equal to the clicked asin; the negative line precedes the
  positive line and both share the history of earlier clicks.
* Only each user's **last** behaviour is used (`split_by_user.py` reads
  `local_test` only), and only if the user has an earlier click: one (negative,
  positive) pair of lines per user, sent to the test file with probability 1/10
  (`randint(1, 10) == 2`), else to the train file. Train/test users are
  disjoint, so every test uid is unknown (id 0) to the vocabulary.
* Vocabularies from the train file only: counts of uid, of mid (target +
  history) and of cat (target + history), ids by descending count; `mid_voc` and
  `cat_voc` first map `default_mid`/`default_cat` to 0 and then number real keys
  from 1 (a key literally named `default_cat` — the category given to items
  without meta — is renumbered, leaving id 0 unused, exactly as coded).

Differences, all forced or harmless, and documented:

* The original iterates users in Python 2 dict order (a hash order of the
  reviewer ids, unrelated to their activity) and draws with unseeded Python 2
  `random`; here users go in an order shuffled by `random.Random(seed)`, draws
  come from `random.Random(seed)` streams, and count ties in the vocabularies
  are broken by first appearance in the train file (Python 2 used dict order).
  The shuffle matters: the DIEN repo trains in file order without shuffling,
  and the review files list users in an order that correlates with history
  length and item ids, which would drift along the training file.
* Negatives are drawn for the last behaviour only (the original also draws
  them for earlier behaviours, which end up only in the unused `local_train`).
* A negative whose asin has no meta gets `default_cat` (the original raises
  KeyError); `item-info` lists only reviewed items (their categories are all
  the iterator ever looks up).
"""

import collections
import dataclasses
import os
import pickle
import random
from typing import Dict, List

from absl import logging

from din_tf.data import amazon
from din_tf.data._io import atomic_output_dir

DEFAULT_MID = "default_mid"
DEFAULT_CAT = "default_cat"
SEP = "\x02"  # history separator (Ctrl-B) used by the original files


@dataclasses.dataclass
class DienFiles:
    """Contents of the files the DIEN iterator reads (lines without newline)."""

    item_info: List[str]
    reviews_info: List[str]
    train_lines: List[str]
    test_lines: List[str]
    uid_voc: Dict[str, int]
    mid_voc: Dict[str, int]
    cat_voc: Dict[str, int]

    @property
    def counts(self):
        return dict(train_users=len(self.train_lines) // 2, test_users=len(self.test_lines) // 2,
                    n_users=len(self.uid_voc), n_items=len(self.mid_voc),
                    n_categories=len(self.cat_voc))


def _rating_text(r):
    return "nan" if r != r else str(float(r))  # Python 2 str(float) for these values


def build(reviews: amazon.Reviews, categories: Dict[str, str], seed=0) -> DienFiles:
    """Runs the protocol on reviews and `{asin: category string}` (first path leaf)."""
    if len(reviews) == 0:
        raise ValueError(f"{reviews.source}: no reviews")
    pool = reviews.item
    if len(set(pool)) < 2:
        raise ValueError(f"{reviews.source}: expected at least 2 distinct asins to draw "
                         f"negatives from, got {len(set(pool))}")
    reviewed = set(pool)
    item_info = [f"{a}\t{c}" for a, c in categories.items() if a in reviewed]
    times = reviews.time.tolist()
    reviews_info = [f"{u}\t{a}\t{_rating_text(r)}\t{t}" for u, a, r, t in zip(
        reviews.user, reviews.item, reviews.rating.tolist(), times)]

    by_user = collections.defaultdict(list)  # insertion order = first appearance
    for idx, u in enumerate(reviews.user):
        by_user[u].append(idx)

    users = list(by_user)
    random.Random(f"dien-users-{seed}").shuffle(users)
    neg_rng = random.Random(f"dien-negatives-{seed}")
    split_rng = random.Random(f"dien-split-{seed}")
    train_lines, test_lines = [], []
    for user in users:
        idxs = by_user[user]
        idxs.sort(key=lambda i: times[i])  # stable
        if len(idxs) < 2:
            continue  # no earlier click: local_aggretor writes nothing for this user
        rand_int = split_rng.randint(1, 10)
        last = idxs[-1]
        asin = pool[last]
        while True:
            neg = pool[neg_rng.randrange(len(pool))]
            if neg != asin:
                break
        hist_items = SEP.join(pool[i] for i in idxs[:-1])
        hist_cats = SEP.join(categories.get(pool[i], DEFAULT_CAT) for i in idxs[:-1])
        lines = test_lines if rand_int == 2 else train_lines
        lines.append(f"0\t{user}\t{neg}\t{categories.get(neg, DEFAULT_CAT)}\t{hist_items}\t"
                     f"{hist_cats}")
        lines.append(f"1\t{user}\t{asin}\t{categories.get(asin, DEFAULT_CAT)}\t{hist_items}\t"
                     f"{hist_cats}")
    if not train_lines:
        raise ValueError(f"{reviews.source}: no user with at least 2 reviews landed in the "
                         "training split; nothing to build vocabularies from")
    uid_voc, mid_voc, cat_voc = vocabularies(train_lines)
    return DienFiles(item_info, reviews_info, train_lines, test_lines, uid_voc, mid_voc, cat_voc)


def vocabularies(train_lines):
    """`generate_voc.py`: (uid_voc, mid_voc, cat_voc) from split-file lines."""
    uid, mid, cat = collections.Counter(), collections.Counter(), collections.Counter()
    for line in train_lines:
        f = line.split("\t")
        uid[f[1]] += 1
        mid[f[2]] += 1
        cat[f[3]] += 1
        if f[4]:
            mid.update(f[4].split(SEP))
            cat.update(f[5].split(SEP))

    def number(counter, default):
        ranked = sorted(counter.items(), key=lambda kv: -kv[1])  # stable: ties by first seen
        voc = {} if default is None else {default: 0}
        for index, (key, _) in enumerate(ranked, start=0 if default is None else 1):
            voc[key] = index
        return voc

    return number(uid, None), number(mid, DEFAULT_MID), number(cat, DEFAULT_CAT)


def write(files: DienFiles, output_dir):
    """Writes `item-info`, `reviews-info`, `local_train_splitByUser`,
    `local_test_splitByUser`, `uid_voc.pkl`, `mid_voc.pkl`, `cat_voc.pkl`
    (pickle protocol 2, loadable by the Python 2 original), all or nothing."""
    with atomic_output_dir(output_dir) as tmp:
        for name, lines in (("item-info", files.item_info), ("reviews-info", files.reviews_info),
                            ("local_train_splitByUser", files.train_lines),
                            ("local_test_splitByUser", files.test_lines)):
            with open(os.path.join(tmp, name), "w", encoding="utf-8", newline="\n") as f:
                f.write("".join(line + "\n" for line in lines))
        for name, voc in (("uid_voc.pkl", files.uid_voc), ("mid_voc.pkl", files.mid_voc),
                          ("cat_voc.pkl", files.cat_voc)):
            with open(os.path.join(tmp, name), "wb") as f:
                pickle.dump(voc, f, protocol=2)
    logging.info("DIEN protocol: wrote %s (%s)", output_dir, files.counts)
