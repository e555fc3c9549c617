"""The feature schema: JSON / get_config round trips, consistency errors that
name the feature, vocabulary fitting and the encoder's lookups."""

import json

import numpy as np
import pytest

from din_tf.schema import (
    CategoricalFeature,
    FeatureEncoder,
    FeatureSchema,
    NumericFeature,
    SchemaError,
    SequenceGroup,
    fit_vocabularies,
    original_schema,
)


def movie_schema(**sequence):
    return FeatureSchema(
        features=[CategoricalFeature("user", "user"),
                  CategoricalFeature("gender", "user", embedding_dim=4),
                  CategoricalFeature("item", "candidate", dtype="int64"),
                  CategoricalFeature("genres", "candidate", max_values=3, min_count=2),
                  CategoricalFeature("hour", "context", lookup="hashing", size=24,
                                     dtype="int64", embedding_dim=4),
                  NumericFeature("price", "candidate")],
        sequences=[SequenceGroup("history", ("item", "genres"), max_length=5,
                                 negatives=True, **sequence)])


def test_json_and_config_round_trips_give_the_same_schema():
    for schema in (movie_schema(), original_schema(9, 30, 6)):
        assert FeatureSchema.from_json(schema.to_json()) == schema
        assert FeatureSchema.from_config(json.loads(json.dumps(schema.get_config()))) == schema


def test_the_originals_schema_uses_the_originals_keys_and_tables():
    schema = original_schema(9, 30, 6)
    history = schema.sequences[0]
    assert history.step_keys == ("history_item_ids", "history_category_ids")
    assert history.negative_step_keys == ("negative_item_ids", "negative_category_ids")
    assert {t: m[0].rows for t, m in schema.tables().items()} == {"uid": 9, "mid": 30, "cat": 6}


def test_default_keys_follow_the_sequence_name():
    history = movie_schema().sequences[0]
    assert history.step_keys == ("history_item", "history_genres")
    assert history.length == "history_length"
    assert history.negative_step_keys == ("history_negative_item", "history_negative_genres")


BAD_SCHEMAS = [
    (lambda: FeatureSchema([CategoricalFeature("item", "candidate")],
                           [SequenceGroup("history", ("item", "shop"))]),
     r"sequence 'history': step feature 'shop' has no candidate counterpart"),
    (lambda: FeatureSchema([CategoricalFeature("user", "user")]),
     r"at least one categorical feature in group 'candidate'"),
    (lambda: FeatureSchema([CategoricalFeature("item", "candidate"),
                            CategoricalFeature("user", "user")],
                           [SequenceGroup("history", ("user",))]),
     r"step feature 'user' must be a categorical feature in group 'candidate'"),
    (lambda: CategoricalFeature("item", "candidate", lookup="hashing"),
     r"feature 'item': lookup 'hashing' needs a size"),
    (lambda: CategoricalFeature("item", "behaviour"), r"feature 'item': group must be one of"),
    (lambda: FeatureSchema([CategoricalFeature("item", "candidate", table="ids"),
                            CategoricalFeature("shop", "candidate", table="ids",
                                               embedding_dim=8)]),
     r"features 'item' and 'shop' share table 'ids' but differ in embedding_dim"),
    (lambda: FeatureSchema.from_config({"features": [{"name": "item", "group": "candidate",
                                                      "kind": "categorical", "width": 3}]}),
     r"feature 'item': unknown field\(s\) \['width'\]"),
    (lambda: FeatureSchema.from_json("{not json"), r"schema: not valid JSON"),
]


@pytest.mark.parametrize("make, message", BAD_SCHEMAS)
def test_bad_schemas_name_the_feature_and_field(make, message):
    with pytest.raises(SchemaError, match=message):
        make()


def _fitted():
    values = {"user": [np.array(["a", "b", "a", "c"])], "gender": [np.array(["f", "m"])],
              "item": [np.array([5, 6, 7]), np.array([5, 5])],
              "genres": [np.array([["x", "y", ""], ["y", "z", ""], ["x", "", ""]])],
              "price": np.array([1.0, 2.0, 3.0])}
    return fit_vocabularies(movie_schema(), values)


def test_vocabularies_are_most_frequent_first_and_respect_min_count():
    schema, vocabularies = _fitted()
    assert vocabularies["user"].tolist() == ["a", "b", "c"]
    assert vocabularies["item"].tolist() == [5, 6, 7]  # 5 counted over both arrays
    assert vocabularies["genres"].tolist() == ["x", "y"]  # "z" is seen once, min_count 2
    assert schema.feature("genres").rows == 2 + 1 + 1  # known + OOV + padding
    assert schema.feature("price").mean == pytest.approx(2.0)
    assert schema.feature("price").std == pytest.approx(np.std([1.0, 2.0, 3.0]))


def test_an_empty_vocabulary_is_an_error_naming_the_feature():
    values = {"user": [np.array(["a"])], "gender": [np.array(["f"])], "item": [np.array([1])],
              "genres": [np.array([["x", "", ""]])], "price": np.array([1.0])}
    with pytest.raises(SchemaError, match=r"feature 'genres': empty vocabulary"):
        fit_vocabularies(movie_schema(), values)


def test_the_encoder_maps_known_values_unseen_values_and_padding():
    schema, vocabularies = _fitted()
    encoder = FeatureEncoder(schema, vocabularies)
    out = encoder({
        "user": np.array(["a", "never-seen"]), "item": np.array([7, 99]),
        "genres": np.array([["y", "x", ""], ["z", "", ""]]),
        "price": np.array([2.0, 3.0], "float32"),
        "history_item": np.array([[5, 6, 7], [6, 6, 6]]),
        "history_genres": np.array([[["x", "", ""]] * 3, [["y", "", ""]] * 3]),
        "history_length": np.array([2, 1])})
    # Row 0 padding, row 1 the OOV row, known values from row 2 in vocabulary order.
    assert out["user"].numpy().tolist() == [2, 1]
    assert out["item"].numpy().tolist() == [4, 1]
    assert out["genres"].numpy().tolist() == [[3, 2, 0], [1, 0, 0]]
    assert out["history_item"].numpy().tolist() == [[2, 3, 0], [3, 0, 0]]  # past the length: 0
    assert out["history_genres"].numpy()[1].tolist() == [[3, 0, 0], [0, 0, 0], [0, 0, 0]]
    np.testing.assert_allclose(out["price"].numpy(), (np.array([2.0, 3.0]) - 2.0) / np.std(
        [1.0, 2.0, 3.0]), rtol=1e-6)
    again = FeatureEncoder.from_config(encoder.get_config())
    assert again({"user": np.array(["c"])})["user"].numpy().tolist() == [4]
