"""Bad input fails early with a DataError / ConfigError that says what is wrong and how to fix it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ts_helpers import make_frame

from polyformer.core.errors import ConfigError, DataError
from polyformer.timeseries import ForecastModule
from polyformer.timeseries.data import ForecastDataModule, read_frame


def _dm(df, **kw):
    kw = {"seq_len": 24, "pred_len": 12, "target": "OT", **kw}
    return ForecastDataModule(path=df, **kw)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no CSV at .*data.path"):
        read_frame(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_frame(tmp_path / "empty.csv")


def test_missing_date_column(tmp_path):
    path = tmp_path / "nodate.csv"
    make_frame(50).rename(columns={"date": "time"}).to_csv(path, index=False)
    with pytest.raises(DataError, match="no 'date' column.*data.date_col"):
        _dm(str(path)).setup("fit")
    assert read_frame(path, date_col="time").columns[0] == "date"  # the fix the message names works


def test_non_numeric_columns():
    df = make_frame(50)
    df["station"] = "A1"
    with pytest.raises(DataError, match=r"\['station'\] are not numeric"):
        read_frame(df)


def test_nans_are_reported_with_their_column_and_row():
    df = make_frame(50)
    df.loc[7, "temp"] = np.nan
    with pytest.raises(DataError, match=r"NaN.*\['temp'\], first at row 7.*interpolate"):
        read_frame(df)


def test_bad_or_unordered_dates():
    df = make_frame(50)
    df["date"] = df["date"].astype(str)
    df.loc[3, "date"] = "not a date"
    with pytest.raises(DataError, match="does not parse|unparseable"):
        read_frame(df)
    df = make_frame(50)
    df.loc[10, "date"] = df.loc[2, "date"]
    with pytest.raises(DataError, match="strictly increasing.*row 10"):
        read_frame(df)


def test_too_few_rows_for_seq_len_plus_pred_len():
    with pytest.raises(DataError, match=r"too few rows: the val split.*seq_len \+ pred_len = 24 \+ 12 = 36"):
        _dm(make_frame(100)).setup("fit")
    with pytest.raises(DataError, match="split=ett needs 20 months"):
        _dm(make_frame(400), split="ett").setup("fit")


def test_missing_target_and_bad_options():
    with pytest.raises(DataError, match="target 'nope' is not a column.*data.target"):
        _dm(make_frame(400), features="MS", target="nope").setup("fit")
    with pytest.raises(ConfigError, match="features must be one of"):
        _dm(make_frame(400), features="X")
    with pytest.raises(ConfigError, match="unknown freq"):
        _dm(make_frame(400), freq="fortnight")


def test_checkpoint_variates_differ_from_the_data():
    df = make_frame(400)
    dm = _dm(df.rename(columns={"temp": "humidity"}))
    dm.bind_spec({"variates": ["load", "temp", "OT"], "scaler": {"mean": [0, 0, 0], "std": [1, 1, 1]}})
    with pytest.raises(DataError, match=r"trained on 3 variates.*missing \['temp'\].*not in the checkpoint \['humidity'\]"):
        dm.setup("test")
    extra = _dm(df.assign(wind=1.0))
    extra.bind_spec({"variates": ["load", "temp", "OT"]})
    with pytest.raises(DataError, match=r"not in the checkpoint \['wind'\]"):
        extra.setup("predict")


def test_forecast_input_errors():
    dm = _dm(make_frame(400))
    dm.setup("fit")
    module = ForecastModule(model={"name": "persistence"}, data=dm.data_spec())
    with pytest.raises(DataError, match="too few rows: a forecast needs the last seq_len = 24"):
        module.forecast(make_frame(10))
    with pytest.raises(DataError, match=r"missing \['temp'\]"):
        module.forecast(make_frame(50).drop(columns=["temp"]))
    with pytest.raises(DataError, match="array input must be"):
        module.forecast(np.zeros((30, 2)))
    with pytest.raises(DataError, match="time features: give a DataFrame"):
        module.forecast(np.zeros((30, 3)))
    out = module.forecast(make_frame(50).assign(extra=0.0))  # extra columns are ignored
    assert list(out.columns) == ["date", "load", "temp", "OT"]


def test_predict_needs_a_lookback():
    dm = _dm(make_frame(10))
    dm.bind_spec({"variates": ["load", "temp", "OT"], "scaler": None, "step": "h"})
    with pytest.raises(DataError, match="too few rows.*seq_len = 24"):
        dm.setup("predict")


def test_wrong_type_of_source():
    with pytest.raises(DataError, match="CSV path or a pandas DataFrame"):
        read_frame(pd.Series([1, 2, 3]))
