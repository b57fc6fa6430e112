"""Forecasting models, registered by name in `MODELS`: itransformer, dlinear, patchtst, persistence, seasonal_naive.

Every model maps a lookback `x[B, seq_len, N]` (and optional time features `x_mark[B, seq_len, F]`) to a
forecast `[B, pred_len, N]`. Sizes that come from the data (`seq_len`, `pred_len`, `enc_in`, `period`)
are passed by `ForecastModule` as registry hints.
"""

from polyformer.core.registry import Registry
from polyformer.timeseries.models.dlinear import DLinearNet
from polyformer.timeseries.models.itransformer import ITransformerNet
from polyformer.timeseries.models.naive import PersistenceNet, SeasonalNaiveNet
from polyformer.timeseries.models.patchtst import PatchTSTNet

MODELS = Registry("timeseries model")
MODELS.register("itransformer")(ITransformerNet)
MODELS.register("dlinear")(DLinearNet)
MODELS.register("patchtst")(PatchTSTNet)
MODELS.register("persistence")(PersistenceNet)
MODELS.register("seasonal_naive")(SeasonalNaiveNet)

__all__ = ["MODELS", "ITransformerNet", "DLinearNet", "PatchTSTNet", "PersistenceNet", "SeasonalNaiveNet"]
