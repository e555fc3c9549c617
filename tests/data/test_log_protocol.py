"""`din_tf.data.log_protocol` and `log_prepare` on small hand-checked logs:
histories in time order, negatives never the click and carrying their own
side features, logged labels, the DIEN split and pool, the prepared
directory and the command line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from din_tf.data import log_protocol
from din_tf.data._io import DataFormatError
from din_tf.data.log_prepare import load_prepared_log, prepare_log
from din_tf.data.log_spec import LogSpec
from din_tf.data.logs import read_log
from din_tf.schema.features import FeatureSchema

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# a: x(1) y(2) z(3) w(3; tie, after z in file order); b: x(4) y(5); c, d: one click.
LOG = ("user_id,item_id,timestamp,hour\n"
       "a,x,1,8\nb,y,5,9\na,z,3,10\na,y,2,11\nb,x,4,12\nc,x,1,13\nd,w,2,14\na,w,3,15\n")
ITEMS = "item_id,category\nx,cx\ny,cy\nz,cz\nw,cw\n"
CATEGORY = {b"x": b"cx", b"y": b"cy", b"z": b"cz", b"w": b"cw"}
SCHEMA = {"features": [{"name": "user_id", "group": "user"},
                       {"name": "item_id", "group": "candidate"},
                       {"name": "category", "group": "candidate"},
                       {"name": "hour", "group": "context", "dtype": "int64"}],
          "sequences": [{"name": "history", "features": ["item_id", "category"],
                         "negatives": True}]}


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


@pytest.fixture
def spec(tmp_path):
    return LogSpec.from_dict({
        "path": write(tmp_path / "log.csv", LOG), "user": "user_id", "item": "item_id",
        "timestamp": "timestamp",
        "item_features": {"path": write(tmp_path / "items.csv", ITEMS), "id": "item_id"}})


@pytest.fixture
def log(spec):
    return read_log(spec, FeatureSchema.from_config(SCHEMA))


def rows(samples):
    """Per row: (user, item, category, hour, label, history items, history
    categories)."""
    seq = samples.sequences["history"]
    out = []
    for i in range(len(samples)):
        lo, n = seq.start[i], seq.length[i]
        out.append((samples.columns["user_id"][i], samples.columns["item_id"][i],
                    samples.columns["category"][i], int(samples.columns["hour"][i]),
                    float(samples.label[i]), seq.steps["item_id"][lo:lo + n].tolist(),
                    seq.steps["category"][lo:lo + n].tolist()))
    return out


def check_pairs(pairs):
    """Positive / negative pairs: same user, context, history; the negative's
    item differs from the click and carries its own category."""
    for pos, neg in pairs:
        assert pos[4] == 1.0 and neg[4] == 0.0
        assert neg[0] == pos[0] and neg[3] == pos[3] and neg[5] == pos[5]
        assert neg[1] != pos[1]
        assert CATEGORY[neg[1]] == neg[2] and CATEGORY[pos[1]] == pos[2]
        assert [CATEGORY[i] for i in pos[5]] == pos[6]


def test_din_every_prefix_and_last_click_to_test(log):
    schema = FeatureSchema.from_config(SCHEMA)
    train, test = log_protocol.build_din(log, schema, seed=3)
    train_rows = rows(train)
    positives = sorted((r[0], r[1], r[3], tuple(r[5])) for r in train_rows if r[4] == 1)
    assert positives == [(b"a", b"y", 11, (b"x",)), (b"a", b"z", 10, (b"x", b"y"))]
    assert len(train_rows) == 4
    by_key = {(r[0], len(r[5])): r for r in train_rows if r[4] == 1}
    check_pairs([(by_key[(r[0], len(r[5]))], r) for r in train_rows if r[4] == 0])
    test_rows = rows(test)
    assert len(test_rows) == 4  # users a and b, positive then negative
    pairs = [(test_rows[0], test_rows[1]), (test_rows[2], test_rows[3])]
    check_pairs(pairs)
    last = {p[0]: (p[1], p[5]) for p, _ in pairs}
    assert last == {b"a": (b"w", [b"x", b"y", b"z"]), b"b": (b"y", [b"x"])}


def test_din_is_deterministic_for_a_seed(log):
    schema = FeatureSchema.from_config(SCHEMA)
    one, two = log_protocol.build_din(log, schema, 5), log_protocol.build_din(log, schema, 5)
    for a, b in zip(one, two):
        assert rows(a) == rows(b)


def _popular_item_log(tmp_path, last_click_is_rare):
    """200 users; item p fills 90% of the rows, q0..q2 one click per user, and
    r0..r9 are clicked by user u0 only."""
    lines = ["user_id,item_id,timestamp"]
    for u in range(200):
        rare = f"u{u},q{u % 3},{40 if last_click_is_rare else 3}"
        lines += [f"u{u},p,1", f"u{u},p,2", rare] + [f"u{u},p,{4 + k}" for k in range(27)]
    lines += [f"u0,r{k},{100 + k}" for k in range(10)] if not last_click_is_rare else []
    s = LogSpec(path=write(tmp_path / "log.csv", "\n".join(lines) + "\n"), user="user_id",
                item="item_id", timestamp="timestamp")
    schema = FeatureSchema.from_config({
        "features": [{"name": "user_id", "group": "user"},
                     {"name": "item_id", "group": "candidate"}],
        "sequences": [{"name": "history", "features": ["item_id"]}]})
    return read_log(s, schema), schema


def test_din_negatives_are_uniform_over_items_the_user_never_clicked(tmp_path):
    """As din_protocol draws them: p, though in 90% of the rows, is clicked by
    every user and is never a negative; each user's negatives come uniformly
    from the items they never clicked (two q's and, but for u0, ten r's)."""
    log, schema = _popular_item_log(tmp_path, last_click_is_rare=False)
    train, _ = log_protocol.build_din(log, schema, seed=0)
    item, user = train.columns["item_id"], train.columns["user_id"]
    negatives = np.flatnonzero(train.label == 0)
    clicked = {}
    for u, i in zip(user[train.label == 1], item[train.label == 1]):
        clicked.setdefault(u, set()).add(i)
    clicked[b"u0"] |= {f"r{k}".encode() for k in range(10)} | {b"p"}
    assert not any(item[i] in clicked[user[i]] | {b"p"} for i in negatives)
    others = negatives[user[negatives] != b"u0"]
    assert np.char.startswith(item[others], b"r").mean() == pytest.approx(10 / 12, abs=0.03)


def test_dien_negatives_are_popularity_weighted_and_never_the_click(tmp_path):
    """As dien_protocol draws them: uniformly over log rows, so the popular p
    is most users' negative; never the clicked item."""
    log, schema = _popular_item_log(tmp_path, last_click_is_rare=True)
    train, test = log_protocol.build_dien(log, schema, seed=0)
    for part in (train, test):
        item = part.columns["item_id"]
        negative, positive = item[part.label == 0], item[part.label == 1]
        assert np.all(negative != positive)  # rows alternate negative, positive per user
    negatives = np.concatenate([p.columns["item_id"][p.label == 0] for p in (train, test)])
    # p fills 29 of each user's 30 rows; a draw of the user's own q is redrawn
    # (uniform over items would give p a third).
    rows = log.item.codes.size
    p_rows = 29 * 200
    assert (negatives == b"p").mean() == pytest.approx(p_rows / (rows - rows / 90), abs=0.02)


def test_dien_last_click_per_user_with_pool(log):
    schema = FeatureSchema.from_config(SCHEMA)
    all_rows = []
    for seed in range(12):
        train, test = log_protocol.build_dien(log, schema, seed)
        assert len(train) + len(test) == 4
        for part in (train, test):
            r = rows(part)
            for k in range(0, len(r), 2):
                neg, pos = r[k], r[k + 1]
                check_pairs([(pos, neg)])
                all_rows.append((pos[0], pos[1], pos[5]))
            assert len({x[0] for x in r}) == len(r) // 2  # a user is in one split
        pool = train.negatives["history"]
        assert pool.items["item_id"].tolist() == [b"x", b"y", b"z", b"w"]
        assert pool.items["category"].tolist() == [b"cx", b"cy", b"cz", b"cw"]
        assert sorted(pool.items["item_id"][pool.draws].tolist()) == sorted(
            [b"x", b"y", b"z", b"y", b"x", b"x", b"w", b"w"])
    assert {(u, i, tuple(h)) for u, i, h in all_rows} == {
        (b"a", b"w", (b"x", b"y", b"z")), (b"b", b"y", (b"x",))}
    one = [rows(p) for p in log_protocol.build_dien(log, schema, 7)]
    assert one == [rows(p) for p in log_protocol.build_dien(log, schema, 7)]


def test_dien_sends_about_a_tenth_of_users_to_test(tmp_path):
    lines = ["user_id,item_id,timestamp"] + [f"u{u},i{(u + k) % 7},{k}" for u in range(2000)
                                              for k in range(3)]
    s = LogSpec(path=write(tmp_path / "log.csv", "\n".join(lines) + "\n"), user="user_id",
                item="item_id", timestamp="timestamp")
    schema = FeatureSchema.from_config({"features": [{"name": "user_id", "group": "user"},
                                                     {"name": "item_id", "group": "candidate"}],
                                        "sequences": [{"name": "h", "features": ["item_id"]}]})
    train, test = log_protocol.build_dien(read_log(s, schema), schema, seed=1)
    assert len(train) + len(test) == 4000
    assert 0.07 < len(test) / 4000 < 0.13
    assert not set(train.columns["user_id"].tolist()) & set(test.columns["user_id"].tolist())


LABELLED = ("user_id,item_id,timestamp,y\n"
            "a,x,1,1\na,y,2,0\na,z,3,1\na,w,4,0\nb,x,1,1\na,v,5,1\na,u,6,0\nb,y,2,1\n"
            "c,x,1,0\nc,y,2,1\n")


def test_logged_labels_replace_sampled_negatives(tmp_path):
    s = LogSpec(path=write(tmp_path / "log.csv", LABELLED), user="user_id", item="item_id",
                timestamp="timestamp", label="y")
    schema = FeatureSchema.from_config({
        "features": [{"name": "user_id", "group": "user"},
                     {"name": "item_id", "group": "candidate"}],
        "sequences": [{"name": "history", "features": ["item_id"]}]})
    log = read_log(s, schema)

    def plain(samples):
        seq = samples.sequences["history"]
        return sorted((samples.columns["user_id"][i], samples.columns["item_id"][i],
                       float(samples.label[i]),
                       tuple(seq.steps["item_id"][seq.start[i]:seq.start[i] + seq.length[i]]))
                      for i in range(len(samples)))

    train, test = log_protocol.build_din(log, schema, seed=0)
    assert plain(train) == [(b"a", b"w", 0.0, (b"x", b"z")), (b"a", b"y", 0.0, (b"x",)),
                            (b"a", b"z", 1.0, (b"x",))]
    assert plain(test) == [(b"a", b"u", 0.0, (b"x", b"z", b"v")),
                           (b"a", b"v", 1.0, (b"x", b"z")), (b"b", b"y", 1.0, (b"x",))]
    train, test = log_protocol.build_dien(log, schema, seed=0)
    assert sorted(plain(train) + plain(test)) == [
        (b"a", b"u", 0.0, (b"x", b"z", b"v")), (b"a", b"v", 1.0, (b"x", b"z")),
        (b"b", b"y", 1.0, (b"x",))]


def test_single_item_log_cannot_give_negatives(tmp_path):
    s = LogSpec(path=write(tmp_path / "log.csv", "u,i,t\na,x,1\na,x,2\n"), user="u", item="i",
                timestamp="t")
    schema = FeatureSchema.from_config({"features": [
        {"name": "item", "group": "candidate", "column": "i"}]})
    with pytest.raises(ValueError, match="1 distinct item"):
        log_protocol.build_din(read_log(s, schema), schema)


# -- prepared directory and command line -----------------------------------------------


def test_prepare_and_load_round_trip(spec, tmp_path):
    out = tmp_path / "prepared"
    summary = prepare_log(spec, SCHEMA, "dien", out, seed=2)
    assert sorted(os.listdir(out)) == ["log_spec.json", "schema.json", "summary.json",
                                       "test.npz", "train.npz"]
    assert summary["rows"] == 8 and summary["users"] == 4 and summary["items"] == 4
    assert json.load(open(out / "summary.json"))["train_rows"] == summary["train_rows"]
    assert LogSpec.load(out / "log_spec.json") == spec
    schema, train, test = load_prepared_log(out)
    assert schema == FeatureSchema.from_config(SCHEMA)
    again, _ = log_protocol.build_dien(read_log(spec, schema), schema, seed=2)
    assert rows(train) == rows(again)
    assert train.negatives["history"].draws.tolist() == again.negatives["history"].draws.tolist()


def test_prepare_writes_nothing_on_failure(spec, tmp_path):
    bad = dict(SCHEMA, features=SCHEMA["features"] + [{"name": "shop", "group": "candidate"}])
    with pytest.raises(DataFormatError, match="'shop'"):
        prepare_log(spec, bad, "din", tmp_path / "out")
    assert not [n for n in os.listdir(tmp_path) if n.startswith((".partial", "out"))]


def test_cli_missing_column_is_one_line_and_exit_code_2(spec, tmp_path):
    write(tmp_path / "spec.json", json.dumps({
        "path": "log.csv", "user": "user_id", "item": "item_id", "timestamp": "when",
        "item_features": {"path": "items.csv", "id": "item_id"}}))
    write(tmp_path / "schema.json", json.dumps(SCHEMA))
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run(
        [sys.executable, "-m", "din_tf.data.prepare", "--protocol=din",
         f"--log_spec={tmp_path / 'spec.json'}", f"--schema={tmp_path / 'schema.json'}",
         f"--output_dir={tmp_path / 'out'}"], capture_output=True, text=True, env=env,
        cwd=REPO)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "'when'" in errors[0] and "'hour'" in errors[0]
    assert "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "out")


EXAMPLE = os.path.join(REPO, "din_tf", "experiments", "examples", "movielens100k")


def test_movielens_example_files_parse():
    spec = LogSpec.load(os.path.join(EXAMPLE, "log_spec.json"), data_dir="/data/ml-100k")
    assert spec.path == "/data/ml-100k/u.data"
    assert spec.item_features.path == "/data/ml-100k/u.item"
    assert len(spec.item_features.flags["genres"]) == 19
    for name in ("schema.json", "schema_ids_only.json"):
        schema = FeatureSchema.load(os.path.join(EXAMPLE, name))
        assert schema.sequences[0].item_feature == "item_id"


@pytest.mark.shared_data
def test_movielens_example_on_the_real_files():
    from tests.data.conftest import SHARED_DATA
    data = os.path.join(SHARED_DATA, "movielens-100k")
    spec = LogSpec.load(os.path.join(EXAMPLE, "log_spec.json"), data_dir=data)
    schema = FeatureSchema.load(os.path.join(EXAMPLE, "schema.json"))
    log = read_log(spec, schema)
    assert (len(log), log.n_users, log.n_items) == (100_000, 943, 1682)
    train, test = log_protocol.build_din(log, schema)
    assert (len(train), len(test)) == (196_228, 1886)
    toy_story = np.flatnonzero(log.item.values == b"1")[0]
    assert log.features["genres"].values[log.features["genres"].codes[
        np.flatnonzero(log.item.codes == toy_story)[0]]].tolist() == [
        b"Animation", b"Children's", b"Comedy", b"", b"", b""]


def test_log_spec_is_exclusive_with_the_other_inputs(tmp_path):
    from din_tf.data import prepare
    with pytest.raises(ValueError, match=r"--log_spec takes the place.*--movielens_dir"):
        prepare.run_log("din", tmp_path / "o", "spec.json", "schema.json",
                        movielens_dir="ml-100k", reviews=None)
    with pytest.raises(ValueError, match="--log_spec and --schema must be given together"):
        prepare.run_log("din", tmp_path / "o", "spec.json", None)


def test_user_time_order_matches_lexsort_for_int_and_float_times():
    from din_tf.data.logs import Coded, Log
    rng = np.random.default_rng(0)
    user = rng.integers(0, 50, 5000).astype(np.int32)
    for time in (rng.integers(-5, 5, 5000), rng.integers(0, 2**61, 5000),
                 rng.random(5000).round(2)):
        log = Log(source="x", user=Coded(user, np.arange(50)), item=Coded(user, np.arange(50)),
                  timestamp=time, label=None, features={})
        assert (log_protocol._user_time_order(log) == np.lexsort((time, user))).all()
