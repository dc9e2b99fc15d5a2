"""CTR models, one file each: Hiformer and the classic baselines, all `forward(batch) -> logits`.

Every model embeds the fields with `FieldEmbedding` (same embedding size across models in the
configs) and is built from the data's `FieldLayout` (see `recsys.models.base`).
"""

from recsys.models.autoint import AutoInt
from recsys.models.base import CTRModel, mlp_tower
from recsys.models.dcnv2 import DCNv2
from recsys.models.dnn import DNN
from recsys.models.embedding import Batch, FieldEmbedding, FieldLayout
from recsys.models.fm import FM
from recsys.models.hiformer import (
    CompositeProjection,
    HeterogeneousAttentionLayer,
    Hiformer,
    HiformerLayer,
)
from recsys.models.lr import LogisticRegression
from recsys.models.transformer import FieldTransformer

__all__ = [
    "DNN",
    "FM",
    "AutoInt",
    "Batch",
    "CTRModel",
    "CompositeProjection",
    "DCNv2",
    "FieldEmbedding",
    "FieldLayout",
    "FieldTransformer",
    "HeterogeneousAttentionLayer",
    "Hiformer",
    "HiformerLayer",
    "LogisticRegression",
    "mlp_tower",
]
