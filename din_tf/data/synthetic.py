"""Synthetic Amazon-format data with planted interest structure (the bundled
default dataset; see data/README.md for the design and why it separates the
models).

Generative story, per user:

* Categories sit on a ring; a user's tastes are a window of nearby categories.
  At any time the user holds a few **active interests** (categories). With
  probability `drift` per click one active interest is replaced by another
  category from the user's tastes, so the mix drifts and old interests die out.
* The next click's category repeats the previous click's category with
  probability `momentum`, otherwise it is a random active interest — so the
  recent part of the history, not the whole history, predicts the category.
* Items of a category lie on a line (latent position). If the user clicked in
  that category before, the next item is the unclicked item nearest to the
  last one clicked there, shifted by a small step: the target-relevant part of
  the history (the same-category clicks, most recent first) predicts the item.
  Otherwise the item is drawn by popularity.

Written in the raw Amazon 2014 formats (`reviews_<name>_5.json.gz`, JSON per
line; `meta_<name>.json.gz`, Python literal per line), after a 5-core filter,
so every pipeline reads it exactly like real data. Deterministic for a seed
(NumPy `default_rng`).
"""

import dataclasses
import datetime
import json
import os

import numpy as np

from din_tf.data._io import atomic_write


@dataclasses.dataclass
class SyntheticConfig:
    name: str = "Synthetic"
    seed: int = 20240601
    n_users: int = 20000
    n_categories: int = 12
    items_per_category: int = 200
    taste_width: int = 10       # categories a user can ever like (a ring window)
    n_active: int = 2           # active interests at a time
    drift: float = 0.25         # per-click probability to swap an active interest
    momentum: float = 0.5       # probability to stay in the previous click's category
    item_step: float = 0.04     # mean move along the item line between same-category clicks
    item_noise: float = 0.03
    mean_extra_length: float = 9.0  # history length = 5 + geometric(mean this)
    max_length: int = 60
    start_time: int = 1325376000    # 2012-01-01
    time_span_days: int = 730


@dataclasses.dataclass
class SyntheticData:
    user: np.ndarray        # int [R], sorted by user then time
    item: np.ndarray        # int [R]
    time: np.ndarray        # int64 [R]
    rating: np.ndarray      # float [R]
    item_category: np.ndarray  # int [n_items]
    item_position: np.ndarray  # float [n_items], latent position on the category line
    config: SyntheticConfig


def generate(config=SyntheticConfig()) -> SyntheticData:
    rng = np.random.default_rng(config.seed)
    c, k = config.n_categories, config.items_per_category
    n_items = c * k
    item_category = np.repeat(np.arange(c), k)
    item_position = np.tile((np.arange(k) + 0.5) / k, c)
    # Popularity: Zipf-like within each category, in random rank order.
    popularity = np.empty(n_items)
    for cat in range(c):
        ranks = rng.permutation(k) + 1
        popularity[cat * k:(cat + 1) * k] = 1.0 / ranks ** 0.8
    users, items, times = [], [], []
    for u in range(config.n_users):
        home = rng.integers(c)
        tastes = (home + np.arange(config.taste_width) - config.taste_width // 2) % c
        active = list(rng.choice(tastes, config.n_active, replace=False))
        n = min(5 + rng.geometric(1.0 / (1.0 + config.mean_extra_length)) - 1, config.max_length)
        clicked, last_in_cat, prev_cat = set(), {}, None
        t = config.start_time + int(rng.integers(config.time_span_days * 86400))
        for _ in range(n):
            if rng.random() < config.drift:
                slot = rng.integers(len(active))
                choices = [x for x in tastes if x not in active]
                active[slot] = rng.choice(choices)
            if prev_cat is not None and prev_cat in active and rng.random() < config.momentum:
                cat = prev_cat
            else:
                cat = active[rng.integers(len(active))]
            lo = cat * k
            free = np.array([lo + j for j in range(k) if lo + j not in clicked], np.int64)
            if free.size == 0:  # category exhausted (only in tiny configs): any unclicked item
                free = np.array([j for j in range(n_items) if j not in clicked], np.int64)
                last_in_cat.pop(cat, None)
            if cat in last_in_cat:
                target = item_position[last_in_cat[cat]] + config.item_step + \
                    config.item_noise * rng.standard_normal()
                item = free[np.argmin(np.abs(item_position[free] - target))]
            else:
                p = popularity[free] / popularity[free].sum()
                item = rng.choice(free, p=p)
            clicked.add(int(item))
            last_in_cat[cat] = int(item)
            prev_cat = cat
            t += 3600 + int(rng.exponential(4 * 86400))
            users.append(u)
            items.append(int(item))
            times.append(t)
    user, item, time = (np.asarray(a) for a in (users, items, times))
    user, item, time = _five_core(user, item, time)
    rating = rng.choice([3.0, 4.0, 5.0], size=len(user), p=[0.15, 0.3, 0.55])
    return SyntheticData(user, item, time.astype(np.int64), rating, item_category,
                         item_position, config)


def _five_core(user, item, time, k=5):
    """Iteratively drops users and items with fewer than k interactions."""
    keep = np.ones(len(user), bool)
    while True:
        uc = np.bincount(user[keep], minlength=user.max() + 1)
        ic = np.bincount(item[keep], minlength=item.max() + 1)
        ok = keep & (uc[user] >= k) & (ic[item] >= k)
        if ok.sum() == keep.sum():
            return user[keep], item[keep], time[keep]
        keep = ok


def user_key(u):
    return f"A{u:07d}SYN"


def item_key(i):
    return f"B{i:06d}SX"


def category_path(cat, config):
    dept = cat // 4
    return [config.name, f"Department {dept}", f"Category {cat:02d}"]


def write_raw(data: SyntheticData, directory):
    """Writes `reviews_<name>_5.json.gz` and `meta_<name>.json.gz`; returns paths."""
    cfg = data.config
    reviews_path = os.path.join(directory, f"reviews_{cfg.name}_5.json.gz")
    meta_path = os.path.join(directory, f"meta_{cfg.name}.json.gz")
    with atomic_write(reviews_path) as f:
        for u, i, t, r in zip(data.user.tolist(), data.item.tolist(), data.time.tolist(),
                              data.rating.tolist()):
            day = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
            f.write(json.dumps({
                "reviewerID": user_key(u), "asin": item_key(i), "helpful": [0, 0],
                "reviewText": "", "overall": r, "summary": "", "unixReviewTime": t,
                "reviewTime": f"{day.month:02d} {day.day}, {day.year}"}) + "\n")
    used = np.unique(data.item)
    with atomic_write(meta_path) as f:
        for i in used.tolist():
            f.write(repr({"asin": item_key(i), "title": f"Item {i}",
                          "categories": [category_path(int(data.item_category[i]), cfg)]})
                    + "\n")
    return reviews_path, meta_path


def _auc(pos, neg):
    """Exact Mann-Whitney AUC of paired positive/negative scores (ties = 1/2)."""
    scores = np.concatenate([pos, neg])
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = start + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    n_pos, n_neg = len(pos), len(neg)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def proxy_report(samples, item_position=None, decay=0.7):
    """AUCs of hand-made scores on test `Samples` whose rows come in (positive,
    negative) pairs with the same history — what each model family can exploit:

    * `pooling_category`: share of the target's category in the whole history
      (what sum/mean pooling plus an MLP can express);
    * `recency_category`: the same share with weights `decay**age` (needs order);
    * `last_same_category_item` (oracle, uses the latent item positions): how
      close the target is to the item expected after the last same-category
      click (needs target-aware selection of history items).
    """
    out = {}
    n = len(samples)
    pooled, recent, item_score = np.zeros(n), np.zeros(n), np.zeros(n)
    for r in range(n):
        items, cats = samples.history(r)
        hit = cats == samples.category_id[r]
        pooled[r] = hit.mean()
        w = decay ** np.arange(len(cats))[::-1]
        recent[r] = (w * hit).sum() / w.sum()
        if item_position is not None:
            if hit.any():
                last = items[np.flatnonzero(hit)[-1]]
                gap = item_position[samples.item_id[r]] - item_position[last]
                item_score[r] = recent[r] + 1.0 - min(abs(gap - 0.04), 1.0)
            else:
                item_score[r] = recent[r]
    pos, neg = samples.label == 1, samples.label == 0
    out["pooling_category"] = _auc(pooled[pos], pooled[neg])
    out["recency_category"] = _auc(recent[pos], recent[neg])
    if item_position is not None:
        out["recency_plus_last_same_category_item"] = _auc(item_score[pos], item_score[neg])
    return out
