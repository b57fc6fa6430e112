"""Data: TSLib borders, train-only scaler, time features, windows, column selection, embedded TMY3 cache."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from ts_helpers import make_frame

from polyformer.timeseries.data import (
    ForecastDataModule,
    borders,
    ensure_tmy3,
    infer_step,
    select_columns,
    time_features,
)
from polyformer.timeseries.data.frame import future_dates, rows_per_day
from polyformer.timeseries.data.timefeatures import n_time_features
from polyformer.timeseries.data.windows import WindowDataset


def test_ratio_borders_hand_checked():
    # 70 train rows, 20 test rows, 10 val rows; val and test reach seq_len back.
    assert borders(100, 10, "ratio") == {"train": (0, 70), "val": (60, 80), "test": (70, 100)}


def test_ett_borders_match_tslib_etth1():
    # TSLib Dataset_ETT_hour: border1s = [0, 8640 - 96, 11520 - 96], border2s = [8640, 11520, 14400].
    got = borders(17420, 96, "ett", rows_per_day=24)
    assert got == {"train": (0, 8640), "val": (8544, 11520), "test": (11424, 14400)}
    # ETTm (15 minutes): four times the rows per month.
    assert borders(69680, 96, "ett", rows_per_day=96)["test"] == (4 * 16 * 720 - 96, 4 * 20 * 720)


def test_scaler_is_fitted_on_the_training_rows_only():
    values = np.arange(1.0, 11.0)
    df = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=10, freq="h"), "a": values, "b": values[::-1] * 10})
    dm = ForecastDataModule(path=df, seq_len=1, label_len=0, pred_len=1, features="M", target=None)
    dm.setup("fit")
    # train rows are 1..7: mean 4, population std 2 (the test rows 8..10 must not leak in).
    assert dm.scaler.mean[0] == pytest.approx(4.0) and dm.scaler.std[0] == pytest.approx(2.0)
    assert dm.scaler.mean[1] == pytest.approx(70.0) and dm.scaler.std[1] == pytest.approx(20.0)
    test = dm.datasets["test"]
    assert float(test.values[-1, 0]) == pytest.approx((10 - 4) / 2)
    spec = dm.data_spec()
    assert spec["scaler"] == {"mean": [4.0, 70.0], "std": [2.0, 20.0]}
    assert spec["variates"] == ["a", "b"] and spec["step"] == "h" and spec["period"] == 24


def test_bound_spec_reuses_the_checkpoint_scaler():
    df = make_frame(200)
    dm = ForecastDataModule(path=df, seq_len=24, pred_len=12, features="M", target="OT")
    dm.bind_spec({"variates": ["load", "temp", "OT"], "scaler": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 2.0]}})
    dm.setup("test")
    assert list(dm.scaler.mean) == [0.0, 0.0, 0.0] and list(dm.scaler.std) == [1.0, 1.0, 2.0]


def test_time_features_timef_hand_checked():
    stamp = pd.Timestamp("2021-03-15 13:00")  # a Monday, day 74 of the year
    feats = time_features([stamp], "h")[0]
    expected = [13 / 23 - 0.5, 0 / 6 - 0.5, 14 / 30 - 0.5, 73 / 365 - 0.5]
    assert feats == pytest.approx(expected, abs=1e-6)
    assert [n_time_features(f) for f in ("s", "15min", "t", "h", "d", "b", "w", "m", "y")] == [6, 5, 5, 4, 3, 3, 2, 1, 0]
    assert time_features(pd.date_range("2020-01-01", periods=5, freq="D"), "d").shape == (5, 3)


def test_windows_follow_tslib_indexing():
    values = np.arange(20, dtype=np.float32)[:, None]
    ds = WindowDataset(values, np.zeros((20, 0)), seq_len=5, pred_len=3)
    assert len(ds) == 20 - 5 - 3 + 1
    item = ds[2]
    assert item["x"][:, 0].tolist() == [2, 3, 4, 5, 6] and item["y"][:, 0].tolist() == [7, 8, 9]
    last = ds[len(ds) - 1]
    assert last["y"][-1, 0] == 19


def test_test_loader_keeps_every_window():
    dm = ForecastDataModule(path=make_frame(400), seq_len=24, pred_len=12, batch_size=32, target="OT")
    dm.setup("fit")
    n_windows = len(dm.datasets["test"])
    assert n_windows == 80 + 24 - 24 - 12 + 1  # 80 test rows plus 24 of lookback
    seen = sum(len(batch["x"]) for batch in dm.test_dataloader())
    assert seen == n_windows and n_windows % 32 != 0


def test_column_selection_like_tslib():
    cols = ["OT", "a", "b"]
    assert select_columns(cols, "M", "OT") == ["a", "b", "OT"]
    assert select_columns(cols, "MS", "OT") == ["a", "b", "OT"]
    assert select_columns(cols, "S", "OT") == ["OT"]
    assert select_columns(cols, "M", "missing") == cols  # M needs no target


def test_ms_and_s_specs():
    df = make_frame(300)
    for features, n_in, n_out in (("MS", 3, 1), ("S", 1, 1)):
        dm = ForecastDataModule(path=df, seq_len=24, pred_len=12, features=features, target="temp")
        dm.setup("fit")
        spec = dm.data_spec()
        assert (spec["enc_in"], spec["c_out"], spec["outputs"]) == (n_in, n_out, ["temp"])


def test_step_and_future_dates():
    dates = pd.date_range("2020-01-01", periods=10, freq="15min")
    assert infer_step(dates) == "15min" and rows_per_day("15min") == 96
    assert list(future_dates(dates[-1], "15min", 2)) == [pd.Timestamp("2020-01-01 02:30"), pd.Timestamp("2020-01-01 02:45")]
    assert rows_per_day("D") == 1


def test_csv_path_and_dataframe_give_the_same_windows(tiny_csv):
    a = ForecastDataModule(path=str(tiny_csv), seq_len=24, pred_len=12)
    b = ForecastDataModule(path=pd.read_csv(tiny_csv), seq_len=24, pred_len=12)
    a.setup("fit")
    b.setup("fit")
    assert a.data_spec() == b.data_spec()


def test_embedded_tmy3_is_made_once_and_restamped_on_a_new_recipe(tmp_path):
    path = ensure_tmy3(tmp_path)
    frame = pd.read_csv(path, parse_dates=["date"])
    assert frame.shape == (8760, 16) and frame.columns[0] == "date"
    assert "sand_point_Pressure" not in frame.columns  # constant in the file, dropped
    assert (frame["date"].diff().iloc[1:] == pd.Timedelta(hours=1)).all()
    meta = json.loads((path.parent / "recipe.json").read_text())
    assert meta["dropped_constant_columns"] == ["sand_point_Pressure"] and meta["rows"] == 8760
    mtime = path.stat().st_mtime_ns
    assert ensure_tmy3(tmp_path) == path and path.stat().st_mtime_ns == mtime
    other = ensure_tmy3(tmp_path, sites=["greensboro"], variates=["DryBulb", "GHI"])
    assert other != path and list(pd.read_csv(other).columns) == ["date", "greensboro_DryBulb", "greensboro_GHI"]


def test_embedded_datamodule_defaults(tmp_path):
    dm = ForecastDataModule(data_dir=str(tmp_path), seq_len=96, pred_len=96)
    dm.prepare_data()
    dm.setup("fit")
    spec = dm.data_spec()
    assert spec["enc_in"] == 15 and spec["variates"][-1] == "greensboro_DryBulb" and spec["n_marks"] == 4
    assert len(dm.datasets["train"]) == int(8760 * 0.7) - 96 - 96 + 1


@pytest.mark.parametrize("preset", ["etth1", "etth2", "ettm1", "ettm2", "ecl", "traffic", "weather"])
def test_paper_presets_compose_with_the_reference_settings(tmp_path, preset):
    from helpers import compose, domain_conf
    from hydra.utils import instantiate

    cfg = compose(domain_conf("timeseries"), [f"experiment=itransformer_{preset}", "data.pred_len=336"], tmp_path)
    assert cfg.data.seq_len == 96 and cfg.data.pred_len == 336 and cfg.model.name == "itransformer"
    assert cfg.optim.name == "adam" and cfg.optim.scheduler.name == "exponential" and cfg.trainer.max_epochs == 10
    assert cfg.data.split == ("ett" if preset.startswith("ett") else "ratio")
    assert str(cfg.data.path).startswith(str(tmp_path / "dataset"))
    if preset == "etth1":
        path = tmp_path / "ETTh1.csv"
        make_frame(17420).to_csv(path, index=False)
        data = {**cfg.data, "path": str(path)}
        dm = instantiate(data, _convert_="all")
        dm.setup("fit")
        assert dm.ranges == {"train": (0, 8640), "val": (8544, 11520), "test": (11424, 14400)}
