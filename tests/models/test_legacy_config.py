"""Models saved before the vocabulary sizes were renamed (n_uid, n_mid, n_cat
-> n_users, n_items, n_categories) still load: `.keras` files and configs."""

import json
import zipfile

import keras
import numpy as np
import pytest

from din_tf import models
from din_tf.models._legacy_config import LEGACY_ARGUMENTS, rename_legacy_arguments
from tests.models.conftest import make_batch
from tests.models.test_schema_models import side_feature_schema

SIZES = dict(n_users=9, n_items=30, n_categories=6)


def old_style(config):
    """`config` as a model wrote it under the old argument names."""
    new_to_old = {new: old for old, new in LEGACY_ARGUMENTS.items()}
    return {new_to_old.get(k, k): v for k, v in config.items()}


def test_rename_legacy_arguments():
    old = {"n_uid": 9, "n_mid": 30, "n_cat": 6, "name": "dien"}
    assert rename_legacy_arguments(old) == {"n_users": 9, "n_items": 30, "n_categories": 6,
                                            "name": "dien"}
    assert old == {"n_uid": 9, "n_mid": 30, "n_cat": 6, "name": "dien"}  # not modified
    assert rename_legacy_arguments(SIZES) == SIZES
    with pytest.raises(ValueError, match=r"both 'n_mid' \(the old name\) and 'n_items'"):
        rename_legacy_arguments({"n_mid": 30, "n_items": 30})


@pytest.mark.parametrize("name", ["dien_repo/DIEN", "dien_repo/Wide", "baseline/DeepFM"])
def test_an_old_style_keras_file_loads(name, tmp_path):
    model = models.get_model(name, **SIZES)
    features, _ = make_batch()
    path = tmp_path / "new.keras"
    model.save(path)
    # The same file with the config as the old argument names wrote it.
    old_path = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as new, zipfile.ZipFile(old_path, "w") as old:
        for item in new.infolist():
            data = new.read(item)
            if item.filename == "config.json":
                saved = json.loads(data)
                saved["config"] = old_style(saved["config"])
                assert {"n_uid", "n_mid", "n_cat"} <= set(saved["config"])
                data = json.dumps(saved).encode()
            old.writestr(item, data)
    loaded = keras.saving.load_model(old_path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(features), model(features), rtol=1e-6)


def test_an_old_style_schema_config_loads():
    """Schema-built models wrote the three sizes as None."""
    model = models.DIN(schema=side_feature_schema())
    config = old_style(model.get_config())
    assert config["n_uid"] is None and "n_users" not in config
    again = models.DIN.from_config(config)
    assert again.get_config() == model.get_config()
