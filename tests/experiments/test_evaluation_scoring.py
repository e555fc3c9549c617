"""The runner reports what is served: the main job's exported model, asked one
request at a time, ranks the test set exactly as its `eval.json` says; served
scoring does not depend on the evaluation batch size; original scoring forms
test batches as the original does and puts the scores back in file order."""

import dataclasses
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from din_tf import models
from din_tf.data.pipeline import bucketed_batches
from din_tf.experiments import evaluation, inputs, runner
from din_tf.experiments.run import resolve_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))




def _config(experiment, processed_dir, **data):
    return resolve_config(experiment, params_override=json.dumps({
        "data": {"processed_dir": processed_dir, **data},
        "trainer": {"epochs": 1, "steps_per_epoch": 20}}))


@pytest.fixture(scope="module")
def main_job(processed_dir, tmp_path_factory):
    """The README's main job (`default`), shortened to 20 training steps."""
    model_dir = str(tmp_path_factory.mktemp("main_job"))
    cfg = _config("default", processed_dir)
    results = runner.run(cfg, model_dir, "train_and_eval")
    return cfg, model_dir, results


def _one_request_per_row(export_dir, test):
    """Serves every test row alone, its history padded to its own length."""
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    scores = np.empty(len(test), np.float64)
    for row in range(len(test)):
        items, categories = test.history(row)
        request = {
            "user_id": test.user_id[row:row + 1], "item_id": test.item_id[row:row + 1],
            "category_id": test.category_id[row:row + 1],
            "history_item_ids": items[None, :], "history_category_ids": categories[None, :],
            "history_length": test.history_length[row:row + 1],
        }
        scores[row] = serve(**{k: tf.constant(v, tf.int32) for k, v in request.items()})[
            "probability"].numpy()[0]
    return scores


def test_main_job_served_one_request_at_a_time_has_its_reported_auc(main_job, tmp_path):
    cfg, model_dir, results = main_job
    with open(os.path.join(model_dir, "eval.json")) as f:
        reported = json.load(f)
    assert reported["evaluation"].startswith("served")
    data = inputs.load(cfg.data, str(tmp_path / "prepared"))
    served = _one_request_per_row(results["export_dir"], data.test)
    metrics = evaluation.score(data.test.label, served, data.test_groups)
    for key in ("auc", "gauc", "dien_calc_auc"):
        np.testing.assert_allclose(metrics[key], reported[key], atol=1e-6, err_msg=key)


def test_served_scoring_does_not_depend_on_the_evaluation_batch_size(main_job):
    cfg, model_dir, results = main_job
    for batch_size in (7, 1000):
        cfg.data.eval_batch_size = batch_size
        again = runner.run(cfg, model_dir, "eval", export=False)
        for key in ("auc", "gauc", "dien_calc_auc"):
            np.testing.assert_allclose(again[key], results[key], atol=1e-6, err_msg=key)


def test_original_scoring_puts_length_sorted_batches_back_in_file_order(processed_dir,
                                                                        tmp_path):
    """A row-independent model (the paper preset) scores the same on the DIEN
    iterator's length-sorted test batches as on file-order batches; a wrong
    mapping back to the file would pair scores with other rows' labels."""
    cfg = _config("paper/DIEN@dien", processed_dir, eval_batch_size=256)
    assert (cfg.data.batching, cfg.evaluation.scoring) == ("dien_iterator", "original")
    model_dir = str(tmp_path / "run")
    reported = runner.run(cfg, model_dir, "train_and_eval", export=False)
    data = inputs.load(cfg.data, str(tmp_path / "prepared"))
    model = models.get_model(cfg.model.name, n_users=data.n_users, n_items=data.n_items,
                             n_categories=data.n_categories, **cfg.model.options)
    model.compile()
    model.load_weights(os.path.join(model_dir, "final.weights.h5"))
    results = {}
    for batching in ("dien_iterator", "sequential"):
        data_cfg = dataclasses.replace(cfg.data, batching=batching)
        test_ds, order = inputs.test_set(data, data_cfg, True, cfg.runtime.seed)
        assert (order != np.arange(len(order))).any() == (batching == "dien_iterator")
        results[batching] = runner._evaluate(model, runner.TestSet(test_ds, order, data,
                                                                   "original"))
    assert abs(reported["auc"] - 0.5) > 0.01
    for key in ("auc", "gauc", "dien_calc_auc"):
        np.testing.assert_allclose(results["dien_iterator"][key], reported[key], atol=1e-6)
        np.testing.assert_allclose(results["sequential"][key], reported[key], atol=1e-6,
                                   err_msg=key)


def test_bucketed_evaluation_batches_are_those_of_tf_data_bucketing():
    lengths = np.random.default_rng(0).integers(1, 40, size=300)
    boundaries, batch_size = [5, 10, 20], 8
    expected = tf.data.Dataset.range(len(lengths)).bucket_by_sequence_length(
        lambda i: tf.gather(tf.constant(lengths, tf.int32), i), boundaries,
        [batch_size] * (len(boundaries) + 1))
    expected = [b.numpy() for b in expected]
    batches = bucketed_batches(lengths, boundaries, batch_size)
    assert len(batches) == len(expected)
    for mine, theirs in zip(batches, expected):
        np.testing.assert_array_equal(mine, theirs)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))


def test_the_export_command_writes_no_tensorflow_info_lines(main_job, processed_dir):
    """`--mode=export` of the main job: TensorFlow's Python INFO lines about
    writing a SavedModel (renamed inputs, sharding callbacks, assets) stay
    hidden unless --verbose_tf is given."""
    cfg, model_dir, _ = main_job
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-m", "din_tf.experiments.run", "--experiment=default", "--mode=export",
         f"--model_dir={model_dir}", f"--processed_dir={processed_dir}",
         "--params_override=trainer.epochs=1,trainer.steps_per_epoch=20"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SavedModel written to" in proc.stdout
    tensorflow_lines = [line for line in proc.stderr.splitlines()
                        if "INFO:tensorflow" in line or re.match(
                            r"^I\d{4} .*\] (Function `serve`|Sharding callback|Assets written|"
                            r"Writing fingerprint)", line)]
    assert tensorflow_lines == [], proc.stderr[-3000:]
