"""The graphs domain as the CLI sees it: config folder, models, datasets, demo."""

from pathlib import Path

from polyformer.core.training.app import DemoSpec, DomainSpec
from polyformer.graphs.data.sources import SOURCES
from polyformer.graphs.models import MODELS

DOMAIN = DomainSpec(
    name="graphs",
    conf_dir=Path(__file__).parent / "conf",
    models=MODELS,
    datasets=SOURCES,
    demo=DemoSpec(
        model=["experiment=demo"],
        baseline=["experiment=demo", "model=gine"],
        metric="test/accuracy_sbm",
        higher_is_better=True,
    ),
)
