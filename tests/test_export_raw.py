"""Raw-id export: `export_saved_model(model, dir, encoder=encoder)` serves
the raw values of a feature schema with the encoder's lookups in the graph.

The schema: a string user, an int64 item, multi-valued string genres (up to
2) on the candidate, a numeric context hour, and one history over (item,
genres) with negatives. Vocabularies are fitted directly on hand-made values
(users u0..u5, items 10..80, genres a..d), so "u9", "zz", 12345 and "q" are
ids never seen in training.

Checked, for DIN and DIEN (and quickly DeepFM and LogisticRegression): the
served score of a raw request equals `model.predict(encoder(raw))` under
`row_independent_inference`; a row's score depends neither on the other rows
nor on the padding (width or what fills it); unseen string and int64 ids
score on the OOV row (equal to any other unseen id, not to a known one);
plain TensorFlow in a fresh process (and a TF1 Session, TF-Serving's loader
path) loads the vocabularies and scores raw ids; bad requests are refused
naming the feature; a failed export leaves nothing behind.
"""

import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from din_tf import models
from din_tf.export import (
    check_raw_request,
    export_saved_model,
    raw_serving_input_signature,
    raw_serving_request,
    row_independent_inference,
    serving_feature_names,
    serving_input_signature,
    serving_request,
)
from din_tf.layers import Dice
from din_tf.schema import (CategoricalFeature, FeatureEncoder, FeatureSchema, NumericFeature,
                           SequenceGroup, fit_vocabularies)
from tests._saved_model_probe import probe as run_probe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATOL = 1e-6
KNOWN_USERS = [f"u{i}" for i in range(6)]
KNOWN_ITEMS = [10, 20, 30, 40, 50, 60, 70, 80]
KNOWN_GENRES = ["a", "b", "c", "d"]
RAW_SIGNATURE = {
    "user": ["string", [None]], "item": ["int64", [None]], "genres": ["string", [None, None]],
    "hour": ["float32", [None]], "history_item": ["int64", [None, None]],
    "history_genres": ["string", [None, None, None]], "history_length": ["int64", [None]],
}


def _schema():
    return FeatureSchema(
        features=[CategoricalFeature("user", "user", embedding_dim=4),
                  CategoricalFeature("item", "candidate", dtype="int64", embedding_dim=4),
                  CategoricalFeature("genres", "candidate", max_values=2, embedding_dim=4),
                  NumericFeature("hour", "context")],
        sequences=[SequenceGroup("history", ("item", "genres"), max_length=6,
                                 negatives=True)])


def _encoder():
    schema, vocabularies = fit_vocabularies(_schema(), {
        "user": [np.array(KNOWN_USERS)],
        "item": [np.array(KNOWN_ITEMS, np.int64)],
        "genres": [np.array([["a", "b"], ["c", ""], ["d", "a"], ["b", ""]])],
        "hour": [np.array([0.0, 6.0, 12.0, 18.0], np.float32)]})
    return FeatureEncoder(schema, vocabularies)


def _randomize_dice(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, Dice):
            n = layer.alpha.shape[0]
            layer.alpha.assign(rng.uniform(-1, 1, n))
            layer.moving_mean.assign(rng.normal(0, 0.3, n))
            layer.moving_variance.assign(rng.uniform(0.2, 2.0, n))


def _build(name, schema):
    small = dict(schema=schema, hidden_units=(8, 4))
    if name == "din":
        return models.DIN(activation="dice", **small)
    if name == "dien":
        return models.DIEN(hidden_size=6, **small)  # as coded: padded steps in the sum
    if name == "deepfm":
        return models.DeepFM(**small)
    return models.LogisticRegression(schema=schema)


def _genres(rng):
    return list(rng.choice(KNOWN_GENRES + ["q"], size=rng.integers(1, 3), replace=False))


def _rows(n=10, seed=0):
    """Raw rows with histories of 0..5 steps, a few unseen ids, bytes and
    NumPy scalars among them (as a client would send them)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        length = int(rng.integers(0, 6))
        rows.append({
            "user": (KNOWN_USERS + ["u9"])[rng.integers(0, 7)],
            "item": int(rng.choice(KNOWN_ITEMS + [12345])),
            "genres": _genres(rng),
            "hour": float(rng.uniform(0, 24)),
            "history_item": [int(rng.choice(KNOWN_ITEMS)) for _ in range(length)],
            "history_genres": [_genres(rng) for _ in range(length)],
            "history_length": length})
    rows[1]["user"] = b"u2"
    rows[2]["item"] = np.int64(30)
    rows[3]["hour"] = np.float32(3.5)
    rows[4]["history_length"] = 0
    rows[4]["history_item"], rows[4]["history_genres"] = [], []
    return rows


def _tensors(body, specs):
    """The body's instances stacked as TF-Serving does."""
    instances = body["instances"]
    return {k: tf.constant(np.array([row[k] for row in instances],
                                    object if spec.dtype == tf.string
                                    else spec.dtype.as_numpy_dtype), spec.dtype)
            for k, spec in specs.items()}


def _in_process(model, encoder, body):
    """`model.predict(encoder(raw))` under the export's inference behaviour."""
    raw = _tensors(body, raw_serving_input_signature(encoder))
    with row_independent_inference(model):
        return model.predict(encoder(raw), batch_size=len(body["instances"]), verbose=0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """DIN and DIEN exported with the encoder; the request of `_rows()` served
    in one fresh plain-TF process, and predicted in this one."""
    keras.utils.set_random_seed(5)
    tmp = tmp_path_factory.mktemp("raw_export")
    encoder = _encoder()
    body = raw_serving_request(encoder, _rows())
    built, dirs, expected = {}, {}, {}
    for seed, key in enumerate(("din", "dien")):
        model = built[key] = _build(key, encoder.schema)
        _randomize_dice(model, seed)
        dirs[key] = str(export_saved_model(model, tmp / key / "1", encoder=encoder))
        expected[key] = _in_process(model, encoder, body)
    probe = run_probe(tmp, dirs, [{"model": k, "instances": body["instances"]} for k in built])
    served = dict(zip(built, (np.array(r) for r in probe["results"])))
    return {"encoder": encoder, "models": built, "dirs": dirs, "body": body,
            "expected": expected, "served": served, "probe": probe}


def _serve(export_dir):
    return tf.saved_model.load(export_dir).signatures["serving_default"]


def _scores(serve, body):
    specs = serve.structured_input_signature[1]
    return serve(**_tensors(body, specs))["probability"].numpy()


def test_fresh_plain_tf_process_loads_the_vocabularies_and_scores_raw_ids(exported):
    probe = exported["probe"]
    assert probe["din_tf_imported"] is False
    for key in ("din", "dien"):
        assert probe["signatures"][key]["inputs"] == RAW_SIGNATURE
        assert probe["signatures"][key]["outputs"] == {"probability": ["float32", [None]]}
        assert exported["served"][key].shape == (10,)
        assert np.all(np.isfinite(exported["served"][key]))


@pytest.mark.parametrize("key", ["din", "dien"])
def test_served_raw_request_equals_predict_of_the_encoded_batch(exported, key):
    np.testing.assert_allclose(exported["served"][key], exported["expected"][key], atol=ATOL)


def _filled_padding(body):
    """The same request with every padded step holding known ids (and its
    multi-valued slots still padded with "")."""
    out = {"signature_name": body["signature_name"], "instances": []}
    for row in body["instances"]:
        row = dict(row, history_item=list(row["history_item"]),
                   history_genres=[list(s) for s in row["history_genres"]])
        for t in range(row["history_length"], len(row["history_item"])):
            row["history_item"][t] = 20
            row["history_genres"][t] = (["a", "b"] * 9)[:len(row["history_genres"][t])]
        out["instances"].append(row)
    return out


def _widened_genres(body, extra):
    """The same request with `extra` more "" slots in every genres list."""
    out = {"signature_name": body["signature_name"], "instances": []}
    for row in body["instances"]:
        out["instances"].append(dict(
            row, genres=row["genres"] + [""] * extra,
            history_genres=[s + [""] * extra for s in row["history_genres"]]))
    return out


@pytest.mark.parametrize("key", ["din", "dien"])
def test_a_row_does_not_depend_on_its_companions_or_its_padding(exported, key):
    serve, rows = _serve(exported["dirs"][key]), _rows()
    batch = exported["served"][key]
    alone = np.array([_scores(serve, raw_serving_request(exported["encoder"], [row]))[0]
                      for row in rows])
    np.testing.assert_allclose(alone, batch, atol=ATOL)
    wide = raw_serving_request(exported["encoder"], rows, pad_to=9)
    assert {len(r["history_item"]) for r in wide["instances"]} == {9}
    np.testing.assert_allclose(_scores(serve, wide), batch, atol=ATOL)
    filled = _widened_genres(_filled_padding(wide), 1)
    assert filled["instances"][4]["history_item"] == [20] * 9
    np.testing.assert_allclose(_scores(serve, filled), batch, atol=ATOL)
    reordered = raw_serving_request(exported["encoder"], rows[::-1])
    np.testing.assert_allclose(_scores(serve, reordered), batch[::-1], atol=ATOL)


def _variants(row, key, values):
    return [dict(row, **{key: v}) for v in values]


@pytest.mark.parametrize("key", ["din", "dien"])
def test_unseen_ids_score_on_the_oov_row(exported, key):
    serve, encoder = _serve(exported["dirs"][key]), exported["encoder"]
    row = _rows()[0]
    for feature, unseen, known in (("user", ["u9", "zz", ""], ["u1"]),
                                   ("item", [12345, 999999, -7], [40])):
        scores = _scores(serve, raw_serving_request(
            encoder, _variants(row, feature, unseen + known)))
        assert np.all(np.isfinite(scores)), feature
        np.testing.assert_allclose(scores[1:len(unseen)], scores[0], atol=ATOL,
                                   err_msg=feature)
        assert abs(scores[-1] - scores[0]) > 1e-6, feature
        in_process = _in_process(exported["models"][key], encoder, raw_serving_request(
            encoder, _variants(row, feature, unseen + known)))
        np.testing.assert_allclose(scores, in_process, atol=ATOL, err_msg=feature)
    # Unseen values inside the history and the multi-valued genres score too.
    odd = dict(row, genres=["q", "r"], history_item=[777, 20], history_genres=[["q"], ["a"]],
               history_length=2)
    assert np.all(np.isfinite(_scores(serve, raw_serving_request(encoder, [odd]))))


def _session_predict(export_dir, body, specs):
    """Scores through `tf.compat.v1.saved_model.load` + `Session.run`, the
    MetaGraph path of TF-Serving's loader (table initializers included)."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], export_dir)
        signature = meta_graph.signature_def["serving_default"]
        feed = {}
        for name, spec in specs.items():
            value = np.array([row[name] for row in body["instances"]])
            if spec.dtype == tf.string:
                value = np.char.encode(value, "utf-8").astype(object)
            feed[signature.inputs[name].name] = value
        return session.run(signature.outputs["probability"].name, feed)


def test_session_loader_initializes_the_lookup_tables(exported):
    served = _session_predict(exported["dirs"]["din"], exported["body"],
                              raw_serving_input_signature(exported["encoder"]))
    np.testing.assert_allclose(served, exported["served"]["din"], atol=ATOL)


@pytest.mark.parametrize("key", ["deepfm", "lr"])
def test_deepfm_and_lr_serve_raw_ids(tmp_path, key):
    keras.utils.set_random_seed(8)
    encoder = _encoder()
    model = _build(key, encoder.schema)
    body = raw_serving_request(encoder, _rows(seed=2))
    serve = _serve(str(export_saved_model(model, tmp_path / key / "1", encoder=encoder)))
    served = _scores(serve, body)
    np.testing.assert_allclose(served, _in_process(model, encoder, body), atol=ATOL)
    unseen = _scores(serve, raw_serving_request(
        encoder, _variants(_rows()[0], "item", [12345, 54321, 40])))
    np.testing.assert_allclose(unseen[1], unseen[0], atol=ATOL)
    assert abs(unseen[2] - unseen[0]) > 1e-6
    if key == "lr":  # XLA compiles the model only (lookups run outside it)
        xla = _serve(str(export_saved_model(model, tmp_path / "xla" / "1", encoder=encoder,
                                            jit_compile=True)))
        np.testing.assert_allclose(_scores(xla, body), served, atol=1e-5)


def test_integer_signature_is_read_from_the_schema(tmp_path):
    """Without an encoder a schema-built model serves rows under its schema's
    names; that export, fed the encoder's rows, equals the raw export."""
    encoder = _encoder()
    model = _build("lr", encoder.schema)
    specs = serving_input_signature(model)
    assert {k: [s.dtype.name, s.shape.as_list()] for k, s in specs.items()} == {
        "user": ["int32", [None]], "item": ["int32", [None]], "genres": ["int32", [None, None]],
        "hour": ["float32", [None]], "history_item": ["int32", [None, None]],
        "history_genres": ["int32", [None, None, None]], "history_length": ["int32", [None]]}
    assert serving_feature_names(model) == tuple(specs) == tuple(
        raw_serving_input_signature(encoder))
    body = raw_serving_request(encoder, _rows(seed=3))
    rows = encoder(_tensors(body, raw_serving_input_signature(encoder)))
    integer = _serve(str(export_saved_model(model, tmp_path / "rows" / "1")))
    raw = _serve(str(export_saved_model(model, tmp_path / "raw" / "1", encoder=encoder)))
    np.testing.assert_allclose(integer(**rows)["probability"].numpy(), _scores(raw, body),
                               atol=ATOL)
    row_body = serving_request(model, {k: v.numpy() for k, v in rows.items()})
    np.testing.assert_allclose(_scores(integer, row_body), _scores(raw, body), atol=ATOL)


def test_raw_serving_request_pads_with_the_padding_values():
    encoder = _encoder()
    rows = [{"user": "u1", "item": 10, "genres": ["a"], "hour": 1, "history_item": [20, 30, 40],
             "history_genres": [["b", "c"], ["a"], ["d"]], "history_length": 2},
            {"user": b"M\xc3\xbasica", "item": np.int64(99), "genres": np.array([b"q", b"a"]),
             "hour": np.float32(2.5), "history_item": [], "history_genres": [],
             "history_length": 0, "unused": 1}]
    body = raw_serving_request(encoder, rows)
    assert body == {"signature_name": "serving_default", "instances": [
        {"user": "u1", "item": 10, "genres": ["a", ""], "hour": 1.0,
         "history_item": [20, 30], "history_genres": [["b", "c"], ["a", ""]],
         "history_length": 2},
        {"user": "Música", "item": 99, "genres": ["q", "a"], "hour": 2.5,
         "history_item": [-1, -1], "history_genres": [["", ""], ["", ""]],
         "history_length": 0}]}
    json.dumps(body)
    check_raw_request(encoder, body)
    assert raw_serving_request(encoder.schema, rows, pad_to=3)["instances"][1][
        "history_item"] == [-1, -1, -1]
    # No history at all: still one padded step, so the nesting gives [B, T, V].
    empty = raw_serving_request(encoder, rows[1:])["instances"][0]
    assert (empty["history_item"], empty["history_genres"]) == ([-1], [[""]])
    batched = raw_serving_request(encoder, {k: np.array([v, v]) for k, v in {
        "user": "u1", "item": 10, "genres": ["a", "b"], "hour": 1.0}.items()} | {
        "history_item": np.array([[10, 20], [30, -1]]),
        "history_genres": np.array([[["a", ""], ["b", ""]], [["c", ""], ["", ""]]]),
        "history_length": np.array([2, 1])})
    assert batched["instances"][1]["history_item"] == [30, -1]
    assert batched["instances"][1]["user"] == "u1"


GOOD = {"user": "u1", "item": 10, "genres": ["a"], "hour": 1.0, "history_item": [20, 30],
        "history_genres": [["b"], ["c"]], "history_length": 2}
BAD_REQUESTS = [
    ({k: v for k, v in GOOD.items() if k != "hour"}, r"rows\[0\].*missing.*\['hour'\]"),
    ({k: v for k, v in GOOD.items() if k != "history_length"},
     r"missing.*\['history_length'\]"),
    (dict(GOOD, user=1.5), r"feature 'user' expects strings.*1\.5 \(float\)"),
    (dict(GOOD, user=7), r"feature 'user' expects strings.*7 \(int\)"),
    (dict(GOOD, item=10.0), r"feature 'item' expects integer ids.*10\.0 \(float\)"),
    (dict(GOOD, item="10"), r"feature 'item' expects integer ids.*'10' \(str\)"),
    (dict(GOOD, history_item=[20, 30.5]), r"feature 'history_item' expects integer ids"),
    (dict(GOOD, history_genres=[["b"], [3.0]]), r"feature 'history_genres' expects strings"),
    (dict(GOOD, hour="noon"), r"feature 'hour' expects numbers.*'noon' \(str\)"),
    (dict(GOOD, hour=True), r"feature 'hour' expects numbers"),
    (dict(GOOD, history_length=1.0), r"feature 'history_length' expects a non-negative int"),
    (dict(GOOD, history_length=-1), r"feature 'history_length' expects a non-negative int"),
    (dict(GOOD, user=["u1"]), r"feature 'user' expects one value per row.*\['u1'\]"),
    (dict(GOOD, genres="a"), r"feature 'genres' expects a list of values.*'a' \(str\)"),
    (dict(GOOD, history_item=20), r"feature 'history_item' expects a list of steps"),
    (dict(GOOD, history_genres=["b", "c"]),
     r"feature 'history_genres' expects a list of steps, each a list of values"),
    (dict(GOOD, genres=["a", "b", "c"]), r"feature 'genres' holds 3 values.*max_values=2"),
    (dict(GOOD, history_length=3),
     r"feature 'history_length'=3 is beyond the width of 'history_item' \(2 steps\)"),
]


@pytest.mark.parametrize("row, message", BAD_REQUESTS,
                         ids=[f"{i}-{m[:24]}" for i, (_, m) in enumerate(BAD_REQUESTS)])
def test_bad_requests_are_refused_naming_the_feature(row, message):
    encoder = _encoder()
    check_raw_request(encoder, [GOOD])
    with pytest.raises(ValueError, match=message):
        check_raw_request(encoder, [row])
    with pytest.raises(ValueError, match=r"Invalid rows\[1\]: .*" + message.split(".*")[-1]):
        raw_serving_request(encoder, [GOOD, row])


def test_bad_rest_bodies_are_refused_naming_the_feature():
    encoder = _encoder()
    body = raw_serving_request(encoder, [GOOD, dict(GOOD, history_length=1)])
    check_raw_request(encoder, body)
    ragged = {"instances": [body["instances"][0],
                            dict(body["instances"][1], history_item=[20])]}
    with pytest.raises(ValueError, match=r"instances\[1\]: feature 'history_item' has shape "
                                         r"\[1\] but instances\[0\] has \[2\]"):
        check_raw_request(encoder, ragged)
    with pytest.raises(ValueError, match=r"instances\[0\]: unknown feature\(s\) \['label'\]"):
        check_raw_request(encoder, {"instances": [dict(GOOD, label=1)]})
    with pytest.raises(ValueError, match=r"instances\[0\]: feature 'item' expects integer"):
        check_raw_request(encoder, {"instances": [dict(GOOD, item=1.5)]})


def test_encoder_must_encode_the_models_schema(tmp_path):
    encoder = _encoder()
    model = models.DIN(schema=encoder.schema.replace_features(item={"embedding_dim": 8}),
                       hidden_units=(4,))
    with pytest.raises(ValueError, match=r"encoder: its 'item' is .*Build the model from"):
        export_saved_model(model, tmp_path / "a", encoder=encoder)
    with pytest.raises(ValueError, match=r"encoder=dict.*FeatureEncoder"):
        export_saved_model(model, tmp_path / "a", encoder={})
    original = models.DIN(9, 30, 6)
    with pytest.raises(ValueError, match=r"encodes features \['user', 'item', 'genres', 'hour'\]"
                                         r".*reads features \['user_id'"):
        export_saved_model(original, tmp_path / "a", encoder=encoder)
    assert not (tmp_path / "a").exists()


def test_failed_raw_export_leaves_nothing(tmp_path, monkeypatch):
    encoder = _encoder()
    model = _build("lr", encoder.schema)

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(model, tmp_path / "new" / "1", encoder=encoder)
    assert os.listdir(tmp_path / "new") == []
    existing = tmp_path / "old" / "1"
    existing.mkdir(parents=True)
    (existing / "saved_model.pb").write_text("previous export")
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(model, existing, encoder=encoder, overwrite=True)
    assert os.listdir(tmp_path / "old") == ["1"]
    assert (existing / "saved_model.pb").read_text() == "previous export"


def test_docs_raw_example_runs_through_the_signature(exported):
    with open(os.path.join(ROOT, "docs", "serving.md")) as f:
        text = f.read()
    section = text[text.index("## Raw ids"):]
    request = json.loads(re.search(r"<<'EOF'\n(.*?)\nEOF\n", section, flags=re.S).group(1))
    assert request["instances"][1]["user"] == "new-user"
    encoder = exported["encoder"]
    check_raw_request(encoder, request)
    served = _scores(_serve(exported["dirs"]["dien"]), request)
    assert served.shape == (2,) and np.all(np.isfinite(served))
    np.testing.assert_allclose(served, _in_process(exported["models"]["dien"], encoder,
                                                   request), atol=ATOL)
