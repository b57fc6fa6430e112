"""A tiny regression domain used to test the harness without depending on any real domain."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from polyformer.core.errors import DataError
from polyformer.core.registry import Registry
from polyformer.core.training.app import DemoSpec, DomainSpec
from polyformer.core.training.optim import build_optimization

MODELS = Registry("toy model")


@MODELS.register("linear")
class LinearModel(nn.Module):
    """y = W x + b."""

    def __init__(self, in_dim: int, hidden: int = 0):
        super().__init__()
        self.net = nn.Linear(in_dim, 1) if not hidden else nn.Sequential(
            nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1)
        )

    def forward(self, x):
        return self.net(x).squeeze(-1)


class ToyData(L.LightningDataModule):
    """Noisy linear data; the input mean is 'learned from the data' and travels in the checkpoint."""

    def __init__(self, n: int = 256, in_dim: int = 4, batch_size: int = 16, noise: float = 0.1, seed: int = 0):
        super().__init__()
        self.n, self.in_dim, self.batch_size, self.noise, self.seed = n, in_dim, batch_size, noise, seed
        self.spec = None

    def bind_spec(self, spec):
        if spec and spec.get("in_dim") != self.in_dim:
            raise DataError(f"checkpoint expects in_dim={spec.get('in_dim')}, data has {self.in_dim}")
        self.spec = spec or None

    def setup(self, stage=None):
        g = torch.Generator().manual_seed(self.seed)
        x = torch.randn(self.n, self.in_dim, generator=g) + 3.0
        w = torch.arange(1, self.in_dim + 1, dtype=torch.float32)
        y = x @ w + self.noise * torch.randn(self.n, generator=g)
        if self.spec is None:
            self.spec = {"in_dim": self.in_dim, "x_mean": x[: self.n // 2].mean(0).tolist()}
        x = x - torch.tensor(self.spec["x_mean"])
        cut1, cut2 = self.n // 2, 3 * self.n // 4
        self.train_set = TensorDataset(x[:cut1], y[:cut1])
        self.val_set = TensorDataset(x[cut1:cut2], y[cut1:cut2])
        self.test_set = TensorDataset(x[cut2:], y[cut2:])

    def data_spec(self):
        return dict(self.spec)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test_set, batch_size=self.batch_size)

    def predict_dataloader(self):
        return DataLoader(self.test_set, batch_size=self.batch_size)


class ToyModule(L.LightningModule):
    """Regression with MSE; hyperparameters are plain data."""

    def __init__(self, model: dict, optim: dict | None = None, data: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net = MODELS.build(model, in_dim=data["in_dim"])

    def _loss(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/mse", self._loss(batch), prog_bar=True)

    def test_step(self, batch, batch_idx):
        self.log("test/mse", self._loss(batch))

    def predict_step(self, batch, batch_idx):
        return self.net(batch[0])

    def write_predictions(self, outputs, datamodule, output_dir: Path):
        path = Path(output_dir) / "predictions.pt"
        torch.save(torch.cat(outputs), path)
        return [path]

    def configure_optimizers(self):
        return build_optimization(self, self.hparams.optim)


DOMAIN = DomainSpec(
    name="toy",
    conf_dir=Path(__file__).parent / "conf",
    models=MODELS,
    datasets={"synthetic": "noisy linear data"},
    demo=DemoSpec(model=[], baseline=["model.hidden=0"], metric="test/mse"),
)
