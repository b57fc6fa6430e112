"""polyformer.timeseries: iTransformer long-term forecasting with Time-Series-Library conventions.

- `ForecastModule` / `ITransformer`: the LightningModule (`ITransformer.load_from_checkpoint(p).forecast(df)`).
- `ForecastDataModule`: TSLib-style CSVs or DataFrames, or the embedded TMY3 weather records from pvlib.
- `MODELS`: itransformer (any core mixer), dlinear, patchtst, persistence, seasonal_naive.

Command line: `polyformer train timeseries`, `polyformer eval timeseries ckpt_path=...`,
`polyformer predict timeseries ckpt_path=... data.path=new.csv`.
"""

from polyformer.timeseries.data import ForecastDataModule
from polyformer.timeseries.models import MODELS
from polyformer.timeseries.module import ForecastModule, ITransformer

__all__ = ["ForecastDataModule", "ForecastModule", "ITransformer", "MODELS"]
