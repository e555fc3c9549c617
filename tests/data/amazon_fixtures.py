"""Tiny Amazon 2014 files in the exact public formats (reviews: JSON per line,
meta: Python-literal dict per line)."""

import json

from tests.data.helpers import write_lines

# user -> [(asin, time)], deliberately not in time order in the file.
HISTORIES = {
    "U1": [("I3", 30), ("I1", 10), ("I2", 20), ("I5", 40), ("I4", 50)],
    "U2": [("I2", 5), ("I6", 6), ("I7", 7)],
    "U3": [("I1", 100), ("I8", 90)],
    "U4": [("I9", 1)],
    "U5": [("I4", 11), ("I5", 12), ("I6", 13), ("I7", 14), ("I8", 15), ("I9", 16)],
    "U6": [("I2", 3), ("I3", 2), ("I10", 4), ("I1", 5)],
}
# Two category paths for some items: DIN takes the last path's leaf, DIEN the first's.
CATEGORIES = {
    "I1": [["Electronics", "Audio"], ["Electronics", "Sale"]],
    "I2": [["Electronics", "Audio"]],
    "I3": [["Electronics", "Camera"]],
    "I4": [["Electronics", "Camera"], ["Gifts"]],
    "I5": [["Electronics", "TV"]],
    "I6": [["Electronics", "TV"]],
    "I7": [["Electronics", "Audio"]],
    "I8": [["Electronics", "Camera"]],
    "I9": [["Electronics", "TV"]],
    "I10": [["Electronics", "Audio"]],
}


def review_line(user, asin, time, rating=5.0):
    return json.dumps({"reviewerID": user, "asin": asin, "reviewerName": "x",
                       "helpful": [0, 0], "reviewText": "ok", "overall": rating,
                       "summary": "s", "unixReviewTime": time, "reviewTime": "01 1, 2014"})


def meta_line(asin, categories):
    return repr({"asin": asin, "title": "it's a thing", "price": 9.99,
                 "categories": categories, "salesRank": {"Electronics": 12}})


def review_lines(histories=HISTORIES):
    return [review_line(u, a, t) for u, items in histories.items() for a, t in items]


def meta_lines(categories=CATEGORIES):
    return [meta_line(a, c) for a, c in categories.items()] + [
        meta_line("UNREVIEWED", [["Other"]])]


def write_amazon(tmp_path, gz=False, reviews=None, meta=None):
    suffix = ".json.gz" if gz else ".json"
    r = write_lines(tmp_path / f"reviews_Test_5{suffix}", reviews or review_lines(), gz)
    m = write_lines(tmp_path / f"meta_Test{suffix}", meta or meta_lines(), gz)
    return r, m
