"""docs/own_data.md's complete example is real: its log spec and schema
parse, prepare a log written in the format the page describes, and feed a
model one batch."""

import json
import os
import re

import numpy as np

from din_tf import models
from din_tf.data.log_pipeline import fit_schema, make_log_dataset
from din_tf.data.log_prepare import prepare_log, load_prepared_log
from din_tf.data.log_spec import LogSpec
from din_tf.schema import FeatureEncoder, FeatureSchema

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "own_data.md")


def _json_blocks():
    with open(DOC, encoding="utf-8") as f:
        return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", f.read(), re.S)]


def _write_shop_files(directory, users=30, items=40, seed=0):
    rng = np.random.default_rng(seed)
    with open(os.path.join(directory, "clicks.csv"), "w") as f:
        f.write("user,item,time,clicked,position\n")
        for u in range(users):
            for t in range(int(rng.integers(3, 9))):
                f.write(f"u-{u},sku-{rng.integers(items):04d},{1700000000 + 50 * t},"
                        f"{int(rng.random() < 0.6)},{rng.integers(1, 6)}\n")
    with open(os.path.join(directory, "users.csv"), "w") as f:
        f.write("id,age,city\n" + "".join(
            f"u-{u},{rng.integers(15, 70)},city-{u % 7}\n" for u in range(users)))
    with open(os.path.join(directory, "items.tsv"), "w") as f:
        f.write("sku\tshop\tbrand\tcategory\ttags\tprice\n" + "".join(
            f"sku-{i:04d}\tshop-{i % 6}\tbrand-{i % 4}\tcat-{i % 5}\tt{i % 3}|t{i % 7}\t"
            f"{1 + i % 9}.5\n" for i in range(items)))


def test_the_pages_example_prepares_and_trains(tmp_path):
    spec_values, schema_values = _json_blocks()
    spec = LogSpec.from_dict(spec_values).resolve(str(tmp_path))
    schema = FeatureSchema.from_config(schema_values)
    _write_shop_files(str(tmp_path))
    summary = prepare_log(spec, schema, "din", str(tmp_path / "prepared"))
    assert summary["train_rows"] > 0 and summary["test_rows"] > 0
    _, train, _ = load_prepared_log(str(tmp_path / "prepared"))
    resolved, vocabularies = fit_schema(train)
    encoder = FeatureEncoder(resolved, vocabularies)
    features, labels = next(iter(make_log_dataset(train, encoder, 16, with_negatives=True)))
    assert set(features) >= {"user_id", "age", "city", "tags", "price", "position",
                             "history_item_id", "history_negative_shop", "history_length"}
    model = models.DIEN(schema=resolved)
    model.compile()
    logs = model.train_on_batch(features, labels, return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["aux_loss"] > 0
