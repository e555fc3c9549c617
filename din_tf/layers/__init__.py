"""Keras 3 layers of the DIN / DIEN model zoo (one public class per module)."""

from din_tf.layers.agru_cell import AGRUCell
from din_tf.layers.aigru_cell import AIGRUCell
from din_tf.layers.augru_cell import AUGRUCell
from din_tf.layers.auxiliary_loss import AuxiliaryLoss
from din_tf.layers.auxiliary_network import AuxiliaryNetwork
from din_tf.layers.dice import Dice
from din_tf.layers.din_attention import DINAttention
from din_tf.layers.frozen_batch_norm import FrozenBatchNorm
from din_tf.layers.gru_cell import GRUCell
from din_tf.layers.interest_gru import InterestGRU
from din_tf.layers.prelu import PReLU
from din_tf.layers.row_embedding import RowEmbedding

__all__ = [
    "AGRUCell",
    "AIGRUCell",
    "AUGRUCell",
    "AuxiliaryLoss",
    "AuxiliaryNetwork",
    "DINAttention",
    "Dice",
    "FrozenBatchNorm",
    "GRUCell",
    "InterestGRU",
    "PReLU",
    "RowEmbedding",
]
