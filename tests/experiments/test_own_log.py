"""Your own log end to end: a log the test writes (string ids, side tables,
a multi-valued feature) → `python -m din_tf.data.prepare` → the runner
(train, evaluate, export) → the SavedModel loaded in a fresh process that
imports only TensorFlow → every test row scored from its raw ids, giving
the AUC the runner reported."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from din_tf import metrics
from din_tf.data.log_prepare import load_prepared_log
from din_tf.export_raw import raw_serving_request
from din_tf.experiments import config as C
from din_tf.experiments.runner import run
from tests._saved_model_probe import probe as run_probe

SCHEMA = {
    "features": [
        {"name": "user", "group": "user"},
        {"name": "gender", "group": "user", "embedding_dim": 4},
        {"name": "item", "group": "candidate"},
        {"name": "category", "group": "candidate", "embedding_dim": 6},
        {"name": "tags", "group": "candidate", "max_values": 3, "embedding_dim": 6},
    ],
    "sequences": [{"name": "history", "features": ["item", "category", "tags"],
                   "max_length": 8, "negatives": True}],
}


def write_log(directory, users=50, items=30, seed=0):
    """clicks.csv (user, item, time), users.tsv (id, gender), items.csv (id,
    category, tags joined by '|'); each user clicks mostly one category."""
    rng = np.random.default_rng(seed)
    category = {f"item-{i:02d}": f"c{i % 4}" for i in range(items)}
    with open(os.path.join(directory, "clicks.csv"), "w") as f:
        f.write("user_id,item_id,ts\n")
        for u in range(users):
            favourite = u % 4
            for t in range(int(rng.integers(4, 12))):
                pick = (rng.choice([i for i in range(items) if i % 4 == favourite])
                        if rng.random() < 0.8 else rng.integers(items))
                f.write(f"user-{u},item-{pick:02d},{1000 + 10 * t + u}\n")
    with open(os.path.join(directory, "users.tsv"), "w") as f:
        f.write("id\tgender\n" + "".join(f"user-{u}\t{'fm'[u % 2]}\n" for u in range(users)))
    with open(os.path.join(directory, "items.csv"), "w") as f:
        f.write("id,category,tags\n" + "".join(
            f"{key},{cat},t{i % 5}|t{i % 3 + 5}\n" for i, (key, cat) in
            enumerate(category.items())))
    spec = {"path": "clicks.csv", "user": "user_id", "item": "item_id", "timestamp": "ts",
            "user_features": {"path": "users.tsv", "format": "tsv", "id": "id",
                              "names": ["id", "gender"], "header": True},
            "item_features": {"path": "items.csv", "id": "id",
                              "multi_valued": {"tags": "|"}}}
    renamed = dict(SCHEMA)
    renamed["features"] = [dict(f, column={"user": "user_id", "item": "item_id"}.get(
        f["name"], f["name"])) for f in SCHEMA["features"]]
    for name, value in (("log_spec.json", spec), ("schema.json", renamed)):
        with open(os.path.join(directory, name), "w") as f:
            json.dump(value, f)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    directory = tmp_path_factory.mktemp("own_log")
    write_log(str(directory))
    output = str(directory / "prepared")
    done = subprocess.run(
        [sys.executable, "-m", "din_tf.data.prepare", f"--log_spec={directory}/log_spec.json",
         f"--schema={directory}/schema.json", "--protocol=din", f"--output_dir={output}"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return directory, output


@pytest.fixture(scope="module")
def trained(prepared):
    """DIEN trained, evaluated and exported on the prepared log by the runner."""
    directory, output = prepared
    cfg = C.from_dict({
        "model": {"name": "dien_repo/DIEN", "options": {"mask_history_sum": True}},
        "data": {"protocol": "din", "processed_dir": output, "train_batch_size": 32,
                 "eval_batch_size": 50, "shuffle": True},
        "trainer": {"epochs": 1, "steps_per_epoch": 8, "optimizer": "lazy_adam",
                    "embedding_update": "rows", "halve_lr_each_epoch": False,
                    "mba_strength": 1e-3},
        "evaluation": {"scoring": "served"}})
    model_dir = str(directory / "run")
    run(cfg, model_dir)
    return directory, output, model_dir


def test_prepare_train_evaluate_export_and_serve_raw_ids_in_a_fresh_process(trained):
    directory, output, model_dir = trained
    history = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert history[0]["reg_loss"] > 0 and history[0]["aux_loss"] > 0
    reported = json.load(open(os.path.join(model_dir, "eval.json")))
    _, _, test = load_prepared_log(output)
    rows = test.raw_rows()
    assert any(isinstance(row["user"], str) and row["user"].startswith("user-") for row in rows)
    body = raw_serving_request(test.schema, rows)
    result = run_probe(directory, {"run": os.path.join(model_dir, "export", "1")},
                       [{"model": "run", "instances": body["instances"]}])
    assert not result["din_tf_imported"]
    served = np.array(result["results"][0])
    assert served.shape == (len(test),)
    assert metrics.exact_auc(test.label, served) == pytest.approx(reported["auc"], abs=1e-6)


def test_unseen_raw_ids_are_scored_on_the_oov_row(trained):
    """A user, item and tag never seen in training score (no error), the same
    as any other unseen value, in the served model."""
    directory, output, model_dir = trained
    export_dir = os.path.join(model_dir, "export", "1")
    _, _, test = load_prepared_log(output)
    row = test.raw_rows([0])[0]
    unseen = [dict(row, user=name, item=item, tags=[tag])
              for name, item, tag in (("nobody", "item-new", "t-new"),
                                      ("someone-else", "item-other", "t-other"))]
    body = raw_serving_request(test.schema, unseen + [row])
    served = np.array(run_probe(directory, {"run": export_dir},
                                [{"model": "run", "instances": body["instances"]}])["results"][0])
    assert np.all(np.isfinite(served))
    assert served[0] == pytest.approx(served[1], abs=1e-7)
    assert served[0] != pytest.approx(served[2], abs=1e-6)


def test_a_prepared_log_and_a_different_schema_are_refused(prepared):
    from din_tf.experiments import log_inputs
    directory, output = prepared
    cfg = C.from_dict({"data": {"protocol": "din", "processed_dir": output,
                                "schema": dict(SCHEMA, sequences=[])}})
    with pytest.raises(ValueError, match=r"data.schema differs from the schema "
                                         r"data.processed_dir=.* was prepared with"):
        log_inputs.load(cfg.data, None)
    cfg = C.from_dict({"data": {"protocol": "dien", "processed_dir": output}})
    with pytest.raises(ValueError, match=r"holds the din protocol's samples but "
                                         r"data.protocol='dien'"):
        log_inputs.load(cfg.data, None)


def test_the_runner_prepares_a_log_once_from_its_spec_and_schema(prepared):
    """data.log_spec + data.schema: the runner prepares the log into its
    model_dir (complete, stamped) and a second run reuses that folder."""
    directory, _ = prepared
    cfg = lambda: C.from_dict({  # noqa: E731
        "model": {"name": "baseline/LR"},
        "data": {"protocol": "din", "log_spec": str(directory / "log_spec.json"),
                 "schema": str(directory / "schema.json"), "train_batch_size": 32},
        "trainer": {"epochs": 1, "steps_per_epoch": 2}})
    model_dir = str(directory / "from_spec")
    run(cfg(), model_dir, export=False)
    cache = os.path.join(model_dir, "prepared_data")
    (folder,) = os.listdir(cache)
    assert folder.startswith("log_din_")
    stamp = os.path.join(cache, folder, "prepared.json")
    before = os.stat(stamp).st_mtime_ns
    run(C.from_dict({"trainer": {"epochs": 2}}, cfg()), model_dir, export=False)
    assert os.listdir(cache) == [folder] and os.stat(stamp).st_mtime_ns == before
