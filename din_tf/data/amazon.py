"""Readers for the raw Amazon 2014 product-data files (SNAP / UCSD dumps).

* `reviews_<Category>_5.json[.gz]`: one JSON object per line with `reviewerID`,
  `asin`, `overall` (float rating), `unixReviewTime` (int seconds) and text
  fields we ignore. The originals parse each line with Python `eval`, so a
  Python-literal line is accepted too.
* `meta_<Category>.json[.gz]`: one **Python-literal** dict per line (single
  quotes; not JSON) with `asin` and `categories` (a list of category paths,
  each a list of strings). Parsed with `ast.literal_eval`, never `eval`.

Gzip is detected from the file content, so both `.json` and `.json.gz` work.
"""

import ast
import dataclasses
import json
import re
from typing import Dict, List, Optional

import numpy as np
from absl import logging

from din_tf.data._io import MalformedLines, describe, iter_lines, require_nonempty

_ASIN_RE = re.compile(r"""['"]asin['"]\s*:\s*['"]([^'"]*)['"]""")


@dataclasses.dataclass
class Reviews:
    """Interactions in file order: parallel lists of user and item keys, float
    ratings (NaN if not read) and integer times."""

    user: List[str]
    item: List[str]
    rating: np.ndarray
    time: np.ndarray
    source: str = ""

    def __len__(self):
        return len(self.user)


def _parse_object(text):
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None


def read_reviews(path, skip_malformed=False, require_rating=True):
    """Reads a review file into `Reviews` (file order kept).

    Required per line: a dict with non-empty string `reviewerID` and `asin`,
    integer `unixReviewTime`, and (if `require_rating`) numeric `overall`.
    A bad line raises `DataFormatError` naming file and line; with
    `skip_malformed=True` it is skipped and all skips are reported in one warning.
    Blank lines are ignored.
    """
    users, items, ratings, times = [], [], [], []
    with MalformedLines(path, skip_malformed) as bad:
        for number, text in iter_lines(path):
            if not text.strip():
                continue
            obj = _parse_object(text)
            if not isinstance(obj, dict):
                bad.handle(number, f"expected one JSON object per line, got {describe(text)}")
                continue
            u, a, t, r = (obj.get("reviewerID"), obj.get("asin"), obj.get("unixReviewTime"),
                          obj.get("overall"))
            # Fast path for well-formed lines; anything unusual gets the full check.
            if not (type(u) is str and type(a) is str and type(t) is int and u and a
                    and (type(r) is float or (r is None and not require_rating))
                    and "\t" not in u and "\t" not in a):
                problem = _review_problem(obj, require_rating)
                if problem:
                    bad.handle(number, problem)
                    continue
            users.append(u)
            items.append(a)
            ratings.append(float("nan") if r is None else float(r))
            times.append(int(float(t)))
    require_nonempty(path, len(users), "reviews")
    return Reviews(users, items, np.asarray(ratings, np.float64), np.asarray(times, np.int64),
                   str(path))


def _review_problem(obj, require_rating):
    for key in ("reviewerID", "asin"):
        value = obj.get(key)
        if not isinstance(value, str) or not value or "\t" in value or "\n" in value:
            return (f"field {key!r}: expected a non-empty string without tabs, got "
                    f"{describe(value) if key in obj else 'no such field'}")
    t = obj.get("unixReviewTime")
    if isinstance(t, bool) or not isinstance(t, (int, float, str)) or not _is_int(t):
        return (f"field 'unixReviewTime': expected integer seconds, got "
                f"{describe(t) if 'unixReviewTime' in obj else 'no such field'}")
    if require_rating or "overall" in obj:
        r = obj.get("overall")
        if isinstance(r, bool) or not isinstance(r, (int, float)):
            return (f"field 'overall': expected a number, got "
                    f"{describe(r) if 'overall' in obj else 'no such field'}")
    return None


def _is_int(value):
    try:
        return float(value) == int(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def read_meta(path, items=None, skip_malformed=False):
    """Reads a meta file into `{asin: categories}` (first occurrence of an asin wins,
    as in both originals' maps).

    Args:
      items: optional set of asins to keep; other lines are skipped after a cheap
        regex look at their asin (full meta files are large and only reviewed
        items matter to either protocol).
      skip_malformed: skip (and count in a warning) bad lines instead of raising.

    Each kept line must be a dict with a string `asin` and `categories`, a
    non-empty list of non-empty lists of strings.
    """
    meta = {}
    with MalformedLines(path, skip_malformed) as bad:
        for number, text in iter_lines(path):
            if not text.strip():
                continue
            if items is not None:
                m = _ASIN_RE.search(text)
                if m and m.group(1) not in items:
                    continue
            obj = _parse_object(text)
            if not isinstance(obj, dict):
                bad.handle(number, f"expected one Python-literal dict per line, got "
                                   f"{describe(text)}")
                continue
            asin = obj.get("asin")
            if not isinstance(asin, str) or not asin or "\t" in asin:
                bad.handle(number, f"field 'asin': expected a non-empty string, got "
                                   f"{describe(asin) if 'asin' in obj else 'no such field'}")
                continue
            if items is not None and asin not in items:
                continue
            cats = obj.get("categories")
            if not _valid_paths(cats):
                bad.handle(number, "field 'categories': expected a non-empty list of non-empty "
                                   "lists of strings, got "
                                   f"{describe(cats) if 'categories' in obj else 'no such field'}")
                continue
            meta.setdefault(asin, cats)
    if items is None:
        require_nonempty(path, len(meta), "meta records")
    return meta


def _valid_paths(cats):
    return (isinstance(cats, list) and len(cats) > 0 and all(
        isinstance(p, list) and p and all(isinstance(c, str) and "\t" not in c for c in p)
        for p in cats))


def din_category(categories):
    """DIN repo: the last element of the **last** category path."""
    return categories[-1][-1]


def dien_category(categories):
    """DIEN repo: the last element of the **first** category path."""
    return categories[0][-1]


def item_categories(meta: Dict[str, list], rule) -> Dict[str, str]:
    """`{asin: rule(categories)}` for a meta dict and `din_category`/`dien_category`."""
    return {asin: rule(cats) for asin, cats in meta.items()}


def read_amazon(reviews_path, meta_path, skip_malformed=False, require_rating=True,
                items: Optional[set] = None):
    """Reviews plus the meta of the reviewed items: `(Reviews, {asin: categories})`."""
    logging.info("reading reviews from %s", reviews_path)
    reviews = read_reviews(reviews_path, skip_malformed, require_rating)
    wanted = set(reviews.item) if items is None else items
    logging.info("read %d reviews of %d items; reading their categories from %s",
                 len(reviews), len(wanted), meta_path)
    meta = read_meta(meta_path, wanted, skip_malformed)
    logging.info("read categories for %d of the %d reviewed items", len(meta), len(wanted))
    return reviews, meta


# Above this share of reviewed items without meta, the meta file is most likely
# another category's (or truncated): the protocols would give nearly every item
# the default category and train on noise (AUC near 0.5).
MAX_MISSING_META_FRACTION = 0.5


def check_meta_coverage(reviews, meta, reviews_path, meta_path,
                        max_missing_fraction=MAX_MISSING_META_FRACTION):
    """A few reviewed items without a meta record are a warning (the DIEN
    protocol gives them its default category, as the original does); more
    than `max_missing_fraction` of them is an error naming both files."""
    reviewed = set(reviews.item)
    missing = len(reviewed - set(meta))
    if not missing:
        return
    share = missing / len(reviewed)
    counts = (f"{missing} of the {len(reviewed)} items reviewed in {reviews_path} "
              f"({share:.0%}) have no categories in {meta_path}")
    if share > max_missing_fraction:
        raise ValueError(f"{counts}; expected at most {max_missing_fraction:.0%} missing. Is "
                         "the meta file the same Amazon category as the reviews, and complete?")
    logging.warning("%s; they get the default category.", counts)
