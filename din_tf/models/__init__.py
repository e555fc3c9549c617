"""The model zoo: every model of the DIN and DIEN papers and repos."""

from din_tf.models.ctr_model import CTRModel
from din_tf.models.deep_fm import DeepFM
from din_tf.models.dien import DIEN
from din_tf.models.din import DIN
from din_tf.models.din_repo import DINRepoModel
from din_tf.models.embedding_mlp import DNN, PNN, WideDeep
from din_tf.models.logistic_regression import LogisticRegression
from din_tf.models.registry import BASELINE_MODELS, MODELS, ORIGINAL_MODELS, get_model

__all__ = ["BASELINE_MODELS", "CTRModel", "DIEN", "DIN", "DINRepoModel", "DNN", "DeepFM", "LogisticRegression",
           "MODELS", "ORIGINAL_MODELS", "PNN", "WideDeep", "get_model"]
