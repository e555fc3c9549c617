"""Models built from a feature schema: the originals' inputs are one schema
(same forward pass as the fixed path), and every model trains on side
features, multi-valued features, several sequences and numeric features."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from din_tf import models
from din_tf.models.dien_repo_base import schema_dummy_features
from din_tf.schema import (
    CategoricalFeature,
    FeatureSchema,
    NumericFeature,
    SequenceGroup,
    original_schema,
)
from din_tf.training import MiniBatchAwareL2
from tests.models.conftest import make_batch

SIZES = dict(n_users=9, n_items=30, n_categories=6)


def side_feature_schema(width=8):
    return FeatureSchema(
        features=[CategoricalFeature("user", "user", size=5, embedding_dim=width),
                  CategoricalFeature("age", "user", size=3, embedding_dim=width),
                  CategoricalFeature("item", "candidate", dtype="int64", size=20,
                                     embedding_dim=width),
                  CategoricalFeature("genres", "candidate", size=6, max_values=3,
                                     embedding_dim=width),
                  CategoricalFeature("hour", "context", lookup="hashing", size=24,
                                     dtype="int64", embedding_dim=width),
                  NumericFeature("price", "candidate")],
        sequences=[SequenceGroup("history", ("item", "genres"), max_length=5, negatives=True),
                   SequenceGroup("carts", ("item",), max_length=4)])


def side_feature_batch(schema, n=32, seed=0):
    """Rows in range of every table; the label is 1 when the candidate item
    occurs in the history (a signal every model can learn)."""
    rng = np.random.default_rng(seed)
    features = {}
    for f in schema.features:
        if f.kind == "numeric":
            features[f.name] = rng.normal(size=n).astype("float32")
        else:
            shape = (n, f.max_values) if f.multi_valued else (n,)
            features[f.name] = rng.integers(1, f.rows, shape).astype("int32")
    for seq in schema.sequences:
        steps = seq.max_length
        lengths = rng.integers(0, steps + 1, n).astype("int32")
        features[seq.length] = lengths
        for name, key, negative in zip(seq.features, seq.step_keys,
                                       seq.negative_step_keys or (None,) * len(seq.features)):
            f = schema.feature(name)
            shape = (n, steps, f.max_values) if f.multi_valued else (n, steps)
            features[key] = rng.integers(1, f.rows, shape).astype("int32")
            if negative:
                features[negative] = rng.integers(1, f.rows, shape).astype("int32")
    first = schema.sequences[0]
    labels = (features[first.step_keys[0]] == features["item"][:, None]).any(axis=1)
    return features, labels.astype("float32")


SCHEMA_MODELS = [("dien_repo/DNN", {}), ("dien_repo/PNN", {}), ("dien_repo/Wide", {}),
                 ("dien_repo/DIN", {}), ("dien_repo/DIEN", {}),
                 ("dien_repo/DIN-V2-gru-qa-attGru", {}), ("dien_repo/DIN-V2-gru-att-gru", {}),
                 ("dien_repo/DIN-V2-gru-gru-att", {}), ("baseline/DeepFM", {}),
                 ("baseline/LR", {})]


@pytest.mark.parametrize("name, options", SCHEMA_MODELS)
def test_every_model_trains_on_side_features_and_round_trips(name, options, tmp_path):
    schema = side_feature_schema()
    features, labels = side_feature_batch(schema)
    model = models.get_model(name, schema=schema, mask_history_sum=True, **options)
    model.compile(optimizer=keras.optimizers.Adam(0.02), embedding_update="rows")
    before = model.evaluate(features, labels, batch_size=32, verbose=0, return_dict=True)
    model.fit(features, labels, batch_size=32, epochs=5, verbose=0)
    after = model.evaluate(features, labels, batch_size=32, verbose=0, return_dict=True)
    assert after["ctr_loss"] < before["ctr_loss"]
    assert (before["aux_loss"] > 0) == (name == "dien_repo/DIEN")
    # Every table reads rows only: sparse gradients, one table per schema table.
    tables = {layer.name for layer in model.embedding_tables()}
    assert {f"{t}_embedding" for t in schema.tables()} <= tables
    with tf.GradientTape() as tape:
        _, losses = model.compute_losses(features, labels, training=True)
    grads = tape.gradient(losses["loss"], [t.embeddings for t in model.embedding_tables()])
    assert all(isinstance(g, tf.IndexedSlices) for g in grads)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(features), model(features), rtol=1e-5)


@pytest.mark.parametrize("cls", [models.DNN, models.PNN, models.WideDeep, models.DIN,
                                 models.DIEN])
def test_the_originals_inputs_are_the_original_schema(cls):
    """A model built from vocabulary sizes and one built from their schema
    hold the same variables and compute the same forward pass."""
    features, _ = make_batch()
    fixed = cls(**SIZES)
    built = cls(schema=original_schema(**SIZES))
    assert [v.path for v in built.weights] == [v.path for v in fixed.weights]
    built.set_weights(fixed.get_weights())
    np.testing.assert_array_equal(built(features), fixed(features))


@pytest.mark.parametrize("name", ["dien_repo/DIN", "dien_repo/DIEN", "baseline/DeepFM"])
def test_padding_never_changes_a_score(name):
    schema = side_feature_schema()
    features, _ = side_feature_batch(schema, n=8)
    negatives = {k for seq in schema.sequences for k in seq.negative_step_keys}
    features = {k: v for k, v in features.items() if k not in negatives}  # scoring needs none
    model = models.get_model(name, schema=schema, mask_history_sum=True, dice_mode="paper")
    wider = dict(features)
    for seq in schema.sequences:
        for key in seq.step_keys:
            value = features[key]
            pad = np.full((value.shape[0], 3) + value.shape[2:], 7, value.dtype)
            wider[key] = np.concatenate([value, pad], axis=1)
    np.testing.assert_allclose(model(wider), model(features), rtol=1e-6, atol=1e-7)


def test_mini_batch_aware_l2_charges_each_table_with_its_own_frequencies():
    """Hand-computed penalty of a logistic regression: every present row once,
    divided by its table's count; padding (row 0 of a multi-valued feature,
    steps past the length) is not charged."""
    schema = FeatureSchema(
        features=[CategoricalFeature("item", "candidate", dtype="int64", size=6),
                  CategoricalFeature("genres", "candidate", size=4, max_values=2)],
        sequences=[SequenceGroup("history", ("item",), max_length=3)])
    model = models.LogisticRegression(schema=schema)
    for table in model.embedding_tables():
        table.embeddings.assign(np.arange(1, table.vocab_size + 1, dtype="float32")[:, None])
    counts = {"item_embedding": np.array([1, 2, 4, 1, 1, 1, 1]),
              "genres_embedding": np.array([1, 3, 1, 1, 1, 1])}
    features = {"item": np.array([1, 2]), "genres": np.array([[1, 0], [2, 1]]),
                "history_item": np.array([[2, 5, 6], [3, 0, 0]]),
                "history_length": np.array([2, 1])}
    penalty = MiniBatchAwareL2(0.5, counts)(model.forward(features)["lookups"])
    # item rows 1, 2, 5 (row i holds value i + 1), 3; row 6 lies past the length.
    item = 2**2 / 2 + 3**2 / 4 + 6**2 / 1 + 4**2 / 1
    genres = 2**2 / 3 + 3**2 / 1  # rows 1 and 2; row 0 is padding
    assert float(penalty) == pytest.approx(0.5 * (item + genres))


def test_schema_errors_name_what_is_wrong():
    schema = side_feature_schema()
    no_negatives = FeatureSchema(schema.features, [SequenceGroup("history", ("item",))])
    with pytest.raises(ValueError, match=r"use_aux_loss=True needs a sequence with "
                                         r"negatives=True"):
        models.DIEN(schema=no_negatives)
    with pytest.raises(ValueError, match=r"give either schema or the vocabulary sizes"):
        models.DIN(9, schema=schema)
    mixed = side_feature_schema().replace_features(age={"embedding_dim": 3})
    with pytest.raises(ValueError, match=r"DeepFM: .*same embedding_dim.*'age': 3"):
        models.DeepFM(schema=mixed)
    unfitted = FeatureSchema([CategoricalFeature("item", "candidate")])
    with pytest.raises(ValueError, match=r"feature\(s\) \['item'\] use a vocabulary that has "
                                         r"not been fitted"):
        models.DNN(schema=unfitted)
    with pytest.raises(ValueError, match=r"DIN repo's models read the originals'"):
        models.get_model("din_repo/din", schema=schema)
    model = models.DIN(schema=schema)
    features = schema_dummy_features(schema)
    with pytest.raises(ValueError, match=r"missing input\(s\) \['genres'\]"):
        model({k: v for k, v in features.items() if k != "genres"})
    with pytest.raises(ValueError, match=r"feature 'genres' has shape \(2,\); expected "
                                         r"\[B, V\]"):
        model(dict(features, genres=np.ones((2,), "int32")))
    with pytest.raises(ValueError, match=r"feature 'price' has dtype string"):
        model(dict(features, price=np.array(["a", "b"])))


@pytest.mark.parametrize("cls", [models.DNN, models.LogisticRegression])
def test_numeric_features_keep_their_fractions(cls):
    """A numeric feature enters as a float: 0.25 and 0 score differently."""
    schema = side_feature_schema()
    features, _ = side_feature_batch(schema, n=4)
    model = cls(schema=schema)
    quarter = model(dict(features, price=np.full(4, 0.25, "float32")))
    zero = model(dict(features, price=np.zeros(4, "float32")))
    assert np.all(np.abs(np.asarray(quarter) - np.asarray(zero)) > 1e-6)
