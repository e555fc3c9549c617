"""Every original model by its original name."""

from din_tf.models.deep_fm import DeepFM
from din_tf.models.dien import DIEN
from din_tf.models.din import DIN
from din_tf.models.din_repo import DINRepoModel
from din_tf.models.embedding_mlp import DNN, PNN, WideDeep
from din_tf.models.logistic_regression import LogisticRegression

# name: (class, fixed arguments). DIEN-repo names are train.py's model_type.
ORIGINAL_MODELS = {
    "dien_repo/DNN": (DNN, {}),
    "dien_repo/PNN": (PNN, {}),
    "dien_repo/Wide": (WideDeep, {}),
    "dien_repo/DIN": (DIN, {}),
    "dien_repo/DIN-V2-gru-att-gru": (DIEN, dict(gru_type="aigru", use_aux_loss=False)),
    "dien_repo/DIN-V2-gru-gru-att": (DIEN, dict(gru_type="gru", use_aux_loss=False)),
    "dien_repo/DIN-V2-gru-qa-attGru": (DIEN, dict(gru_type="agru", use_aux_loss=False)),
    "dien_repo/DIN-V2-gru-vec-attGru": (DIEN, dict(gru_type="augru", use_aux_loss=False)),
    "dien_repo/DIEN": (DIEN, dict(gru_type="augru", use_aux_loss=True)),
    "din_repo/base": (DINRepoModel, dict(kind="base")),
    "din_repo/pnn": (DINRepoModel, dict(kind="pnn")),
    "din_repo/deepfm": (DINRepoModel, dict(kind="deepfm")),
    "din_repo/wide_deep": (DINRepoModel, dict(kind="wide_deep")),
    "din_repo/din": (DINRepoModel, dict(kind="din")),
    "din_repo/din_dice": (DINRepoModel, dict(kind="din_dice")),
}

# The DIN paper's baselines the original repositories do not code; they read
# the originals' inputs or any feature schema, like the DIEN repo's models.
BASELINE_MODELS = {
    "baseline/DeepFM": (DeepFM, {}),
    "baseline/LR": (LogisticRegression, {}),
}
MODELS = {**ORIGINAL_MODELS, **BASELINE_MODELS}


def get_model(name, n_users=None, n_items=None, n_categories=None, schema=None, **kwargs):
    """Builds a model by name, e.g. `get_model("dien_repo/DIEN", n_users=...,
    n_items=..., n_categories=...)`, or from a resolved feature schema,
    `get_model("dien_repo/DIN", schema=schema)` (every model but the DIN
    repo's, which read the originals' inputs only). Extra keyword arguments go
    to the model's constructor (options, presets)."""
    if name not in MODELS:
        raise ValueError(f"Unknown model name {name!r}; expected one of "
                         f"{sorted(ORIGINAL_MODELS) + sorted(BASELINE_MODELS)}.")
    cls, fixed = MODELS[name]
    clash = sorted(set(fixed) & set(kwargs))
    if clash:
        raise ValueError(
            f"get_model({name!r}): {clash} are fixed by this original model "
            f"({', '.join(f'{k}={fixed[k]!r}' for k in clash)}); pick the original name "
            "with the values you want instead.")
    if schema is not None:
        if cls is DINRepoModel:
            raise ValueError(f"get_model({name!r}, schema=...): the DIN repo's models read the "
                             "originals' item/category inputs only; for your own features use "
                             "a dien_repo/* or baseline/* model.")
        return cls(schema=schema, **fixed, **kwargs)
    if cls is DINRepoModel:
        return cls(n_items, n_categories, **fixed, **kwargs)
    return cls(n_users, n_items, n_categories, **fixed, **kwargs)
