"""Data for forecasting: TSLib-style CSVs and DataFrames, the embedded TMY3 records, windows and the DataModule."""

from polyformer.timeseries.data.datamodule import ForecastDataModule, check_variates, select_columns
from polyformer.timeseries.data.frame import future_dates, infer_step, read_frame
from polyformer.timeseries.data.scaler import StandardScaler
from polyformer.timeseries.data.splits import borders
from polyformer.timeseries.data.timefeatures import n_time_features, time_features
from polyformer.timeseries.data.tmy3 import ensure_tmy3, tmy3_frame

__all__ = [
    "ForecastDataModule",
    "StandardScaler",
    "borders",
    "check_variates",
    "ensure_tmy3",
    "future_dates",
    "infer_step",
    "n_time_features",
    "read_frame",
    "select_columns",
    "time_features",
    "tmy3_frame",
]
