import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "fixtures", "golden")


def load_golden(name, directory=GOLDEN_DIR):
    """Loads `<directory>/<name>.npz` (default: tests/fixtures/golden) as a dict
    of arrays. Golden tests take every shape, length, maxlen and expected value
    from what this returns, so a test can point it at a regenerated file."""
    with np.load(os.path.join(directory, name + ".npz")) as z:
        return {k: z[k] for k in z.files}


# A golden test runs on the stored file and on one a test regenerates with
# other shapes, through the same reading code.
GOLDEN_VARIANTS = ("stored", "regenerated")


def golden_variant(variant, name, write_regenerated, tmp_path):
    """The stored `<name>.npz`, or (variant "regenerated") the file that
    `write_regenerated(directory)` writes into tmp_path."""
    if variant == "regenerated":
        write_regenerated(str(tmp_path))
        return load_golden(name, directory=str(tmp_path))
    return load_golden(name)


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends with the float32 policy and a fixed seed."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(1234)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def processed_dir(tmp_path_factory):
    """The bundled raw files through the DIEN protocol, prepared once per test
    session (tests read it; runs that prepare their own data use their own
    model_dir)."""
    from din_tf.data import prepare
    from din_tf.experiments import config as C
    out = tmp_path_factory.mktemp("prepared") / "dien"
    prepare.run("dien", str(out), reviews=C.BUNDLED_REVIEWS, meta=C.BUNDLED_META)
    return str(out)
