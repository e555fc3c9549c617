"""Raw Amazon readers: formats (gzip and plain), malformed lines, missing fields."""

import numpy as np
import pytest

from din_tf.data import amazon
from din_tf.data._io import DataFormatError
from tests.data import amazon_fixtures as fx
from tests.data.helpers import write_lines


@pytest.mark.parametrize("gz", [False, True])
def test_read_reviews_and_meta(tmp_path, gz):
    r, m = fx.write_amazon(tmp_path, gz=gz)
    reviews = amazon.read_reviews(r)
    assert len(reviews) == sum(len(v) for v in fx.HISTORIES.values())
    assert reviews.user[:2] == ["U1", "U1"] and reviews.item[:2] == ["I3", "I1"]
    assert reviews.time[:2].tolist() == [30, 10] and reviews.rating[0] == 5.0
    meta = amazon.read_meta(m)
    assert meta["I1"] == [["Electronics", "Audio"], ["Electronics", "Sale"]]
    assert "UNREVIEWED" in meta
    assert "UNREVIEWED" not in amazon.read_meta(m, items=set(reviews.item))
    assert amazon.din_category(meta["I1"]) == "Sale"
    assert amazon.dien_category(meta["I1"]) == "Audio"


def test_python_literal_review_and_gzip_detected_by_content(tmp_path):
    lines = [repr({"reviewerID": "U", "asin": "A", "overall": 4.0, "unixReviewTime": 7})]
    path = write_lines(tmp_path / "reviews_X_5.json", lines, gz=True)  # gzip without .gz
    reviews = amazon.read_reviews(path)
    assert reviews.item == ["A"] and reviews.time.tolist() == [7]


def test_meta_first_occurrence_wins(tmp_path):
    path = write_lines(tmp_path / "meta.json", [fx.meta_line("A", [["x"]]),
                                                fx.meta_line("A", [["y"]])])
    assert amazon.read_meta(path) == {"A": [["x"]]}


@pytest.mark.parametrize("bad, fragment", [
    ("{not json", "expected one JSON object"),
    ('{"reviewerID": "U9", "asin": "I1", "overall": 5.0}', "unixReviewTime"),
    ('{"asin": "I1", "overall": 5.0, "unixReviewTime": 3}', "reviewerID"),
    ('{"reviewerID": "U9", "asin": "I1", "overall": "five", "unixReviewTime": 3}', "overall"),
    ('{"reviewerID": "U9", "asin": "", "overall": 5.0, "unixReviewTime": 3}', "asin"),
    ('[1, 2]', "expected one JSON object"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_malformed_review_names_file_and_line(tmp_path, bad, fragment, gz):
    lines = fx.review_lines()
    lines.insert(3, bad)
    path, _ = fx.write_amazon(tmp_path, gz=gz, reviews=lines)
    with pytest.raises(DataFormatError, match=fragment) as info:
        amazon.read_reviews(path)
    assert info.value.line_number == 4 and info.value.path == path
    assert "line 4" in str(info.value) and path in str(info.value)
    with pytest.warns(UserWarning, match="skipped 1 malformed"):
        reviews = amazon.read_reviews(path, skip_malformed=True)
    assert len(reviews) == len(fx.review_lines())


def test_rating_optional_when_not_required(tmp_path):
    path = write_lines(tmp_path / "r.json", ['{"reviewerID": "U", "asin": "A", '
                                             '"unixReviewTime": 3}'])
    with pytest.raises(DataFormatError, match="overall"):
        amazon.read_reviews(path)
    assert np.isnan(amazon.read_reviews(path, require_rating=False).rating[0])


@pytest.mark.parametrize("bad, fragment", [
    ("{'asin': 'I1', 'categories': []}", "categories"),
    ("{'asin': 'I1'}", "categories"),
    ("{'asin': 'I1', 'categories': [['a', 3]]}", "categories"),
    ("{'title': 'no asin', 'categories': [['a']]}", "asin"),
    ("{'asin': 'I1', 'categories': [['a']]", "Python-literal"),
])
def test_malformed_meta(tmp_path, bad, fragment):
    path = write_lines(tmp_path / "meta.json.gz", fx.meta_lines() + [bad], gz=True)
    n = len(fx.meta_lines()) + 1
    with pytest.raises(DataFormatError, match=f"line {n}: .*{fragment}"):
        amazon.read_meta(path)
    with pytest.warns(UserWarning, match="skipped 1"):
        assert len(amazon.read_meta(path, skip_malformed=True)) == len(fx.CATEGORIES) + 1


@pytest.mark.parametrize("gz", [False, True])
def test_empty_files(tmp_path, gz):
    path = write_lines(tmp_path / "empty.json", [], gz=gz)
    with pytest.raises(DataFormatError, match="no reviews"):
        amazon.read_reviews(path)
    with pytest.raises(DataFormatError, match="no meta"):
        amazon.read_meta(path)


def test_all_lines_skipped_is_an_error(tmp_path):
    path = write_lines(tmp_path / "r.json", ["garbage", "more garbage"])
    with pytest.warns(UserWarning), pytest.raises(DataFormatError, match="no reviews"):
        amazon.read_reviews(path, skip_malformed=True)


def test_undecodable_bytes(tmp_path):
    path = tmp_path / "r.json"
    path.write_bytes(fx.review_line("U", "A", 1).encode() + b"\n\xff\xfe\n")
    with pytest.raises(DataFormatError, match="line 2: not valid utf-8"):
        amazon.read_reviews(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        amazon.read_reviews(str(tmp_path / "nope.json"))
