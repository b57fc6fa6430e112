"""The timeseries domain as the harness and CLI see it."""

from pathlib import Path

from polyformer.core.training.app import DemoSpec, DomainSpec
from polyformer.timeseries.models import MODELS

DOMAIN = DomainSpec(
    name="timeseries",
    conf_dir=Path(__file__).parent / "conf",
    models=MODELS,
    datasets={
        "tmy3": "hourly TMY3 weather records shipped in pvlib (Greensboro NC + Sand Point AK; embedded default)",
        "csv": "your own Time-Series-Library style CSV: data=csv data.path=file.csv (date column + variates)",
        "ett": "ETTh1/ETTh2/ETTm1/ETTm2 CSVs with the 12/4/4-month borders: data=ett data.path=ETTh1.csv",
    },
    demo=DemoSpec(
        model=["experiment=demo"],
        baseline=["experiment=demo", "model=seasonal_naive"],
        metric="test/mse",
        higher_is_better=False,
    ),
)
