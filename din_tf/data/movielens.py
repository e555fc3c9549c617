"""Readers for MovieLens ratings as interaction logs for the DIN/DIEN protocols.

* 100K: `u.data` (`user \\t item \\t rating \\t time`) and `u.item`
  (`id|title|date|video date|url|19 genre flags`, Latin-1).
* 1M: `ratings.dat` (`user::item::rating::time`) and `movies.dat`
  (`id::title::Genre1|Genre2`, Latin-1).
* 20M (and 25M, latest): `ratings.csv` (`userId,movieId,rating,timestamp`, with a
  header) and `movies.csv` (`movieId,title,genres`, quoted titles).

Category of a movie = its first listed genre (no published DIN/DIEN protocol
exists for MovieLens; the DIN paper's ML-20M setup is not public code).
`min_rating` keeps only ratings >= it (e.g. 4 to treat high ratings as clicks).
"""

import csv
import io
import os

import numpy as np

from din_tf.data._io import MalformedLines, describe, iter_lines, require_nonempty
from din_tf.data.amazon import Reviews

GENRES_100K = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
               "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
               "Romance", "Sci-Fi", "Thriller", "War", "Western")


def _ratings(path, split, skip_malformed, min_rating, header=False):
    users, items, ratings, times = [], [], [], []
    with MalformedLines(path, skip_malformed) as bad:
        for number, text in iter_lines(path, encoding="latin-1"):
            if (header and number == 1) or not text.strip():
                continue
            f = split(text)
            try:
                if len(f) != 4 or not f[0].strip() or not f[1].strip():
                    raise ValueError
                rating, t = float(f[2]), int(f[3])
            except ValueError:
                bad.handle(number, f"expected user, item, rating (number), time (int), got "
                                   f"{describe(text)}")
                continue
            if min_rating is not None and rating < min_rating:
                continue
            users.append(f[0].strip())
            items.append(f[1].strip())
            ratings.append(rating)
            times.append(t)
    require_nonempty(path, len(users), "ratings")
    return Reviews(users, items, np.asarray(ratings), np.asarray(times, np.int64), str(path))


def read_100k(directory, skip_malformed=False, min_rating=None):
    d = os.fspath(directory)
    reviews = _ratings(os.path.join(d, "u.data"), lambda t: t.split("\t"), skip_malformed,
                       min_rating)
    path = os.path.join(d, "u.item")
    cats = {}
    with MalformedLines(path, skip_malformed) as bad:
        for number, text in iter_lines(path, encoding="latin-1"):
            if not text.strip():
                continue
            f = text.split("|")
            flags = f[5:]
            if len(f) != 24 or not f[0].isdigit() or any(x not in ("0", "1") for x in flags):
                bad.handle(number, f"expected 24 '|'-separated fields (id, title, dates, url, 19 "
                                   f"genre flags), got {describe(text)}")
                continue
            cats[f[0]] = GENRES_100K[flags.index("1")] if "1" in flags else GENRES_100K[0]
    require_nonempty(path, len(cats), "movies")
    return reviews, cats


def _first_genre(genres):
    return genres.split("|")[0] if genres else "(no genres listed)"


def read_1m(directory, skip_malformed=False, min_rating=None):
    d = os.fspath(directory)
    reviews = _ratings(os.path.join(d, "ratings.dat"), lambda t: t.split("::"), skip_malformed,
                       min_rating)
    path = os.path.join(d, "movies.dat")
    cats = {}
    with MalformedLines(path, skip_malformed) as bad:
        for number, text in iter_lines(path, encoding="latin-1"):
            if not text.strip():
                continue
            f = text.split("::")
            if len(f) != 3 or not f[0].isdigit():
                bad.handle(number, f"expected 'id::title::genres', got {describe(text)}")
                continue
            cats[f[0]] = _first_genre(f[2])
    require_nonempty(path, len(cats), "movies")
    return reviews, cats


def read_20m(directory, skip_malformed=False, min_rating=None):
    d = os.fspath(directory)
    reviews = _ratings(os.path.join(d, "ratings.csv"), lambda t: t.split(","), skip_malformed,
                       min_rating, header=True)
    path = os.path.join(d, "movies.csv")
    cats = {}
    with MalformedLines(path, skip_malformed) as bad:
        for number, text in iter_lines(path):
            if number == 1 or not text.strip():
                continue
            try:
                f = next(csv.reader(io.StringIO(text)))
            except (csv.Error, StopIteration):
                f = []
            if len(f) != 3 or not f[0].isdigit():
                bad.handle(number, f"expected movieId,title,genres, got {describe(text)}")
                continue
            cats[f[0]] = _first_genre(f[2])
    require_nonempty(path, len(cats), "movies")
    return reviews, cats


def read_movielens(directory, **kwargs):
    """Detects the release from the file names in `directory`."""
    d = os.fspath(directory)
    for marker, reader in (("u.data", read_100k), ("ratings.dat", read_1m),
                           ("ratings.csv", read_20m)):
        if os.path.exists(os.path.join(d, marker)):
            return reader(d, **kwargs)
    raise ValueError(f"read_movielens: argument 'directory' expected a folder with u.data "
                     f"(100K), ratings.dat (1M) or ratings.csv (20M), got {d!r}")
