"""Long-term forecasting models, one file each: the LTSF-Linear baselines and the Transformer family.

Every model maps `x: (batch, seq_len, channels)` (plus calendar features `x_mark`, `y_mark` for
the models that use them) to `(batch, pred_len, channels)`.
"""

from timeseries.models.autoformer import Autoformer
from timeseries.models.dlinear import DLinear
from timeseries.models.informer import Informer
from timeseries.models.linear import Linear
from timeseries.models.nlinear import NLinear
from timeseries.models.patchtst import PatchTST
from timeseries.models.repeat import Repeat
from timeseries.models.transformer import Transformer

__all__ = ["Autoformer", "DLinear", "Informer", "Linear", "NLinear", "PatchTST", "Repeat", "Transformer"]
