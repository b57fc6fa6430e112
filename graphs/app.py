"""The graphs domain as the CLI sees it: config folder, models, datasets (data=<name>), demo.

In Python, any list of torch_geometric `Data` works too: `GraphDataModule.from_graphs(...)`.
"""

from pathlib import Path

from polyformer.core.training.app import DemoSpec, DomainSpec
from polyformer.graphs.models import MODELS

DATASETS = {
    "pattern": "PATTERN-recipe SBM graphs (Dwivedi et al.), node classification, 2 classes; embedded default, generated offline",
    "cluster": "CLUSTER-recipe SBM graphs, node classification, 6 classes; embedded, generated offline",
    "zinc": "ZINC (torch_geometric.datasets.ZINC layout) from data.root, graph regression, MAE; no download",
    "molhiv": "ogbg-molhiv from the OGB csv folder under data.root, ROC-AUC; no download, no ogb package needed",
    "tu": "any TUDataset from data.root (data.name=MUTAG ...), graph classification, random split; no download",
    "gnnbenchmark": "the published PATTERN/CLUSTER/MNIST/CIFAR10 (GNNBenchmarkDataset layout) from data.root",
}

DOMAIN = DomainSpec(
    name="graphs",
    conf_dir=Path(__file__).parent / "conf",
    models=MODELS,
    datasets=DATASETS,
    demo=DemoSpec(
        model=["experiment=demo"],
        baseline=["experiment=demo", "model=gine"],
        metric="test/accuracy_sbm",
        higher_is_better=True,
    ),
)
