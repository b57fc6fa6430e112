"""How a domain plugs into the harness: its DomainSpec, and the Hydra app that runs one verb on it."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyformer.core.errors import PolyformerError
from polyformer.core.registry import Registry

DOMAIN_NAMES = ("timeseries", "rl", "graphs", "vision", "speech", "weather")

log = logging.getLogger("polyformer")


@dataclass(frozen=True)
class DemoSpec:
    """What `make demo` runs for a domain: the model's and a baseline's overrides, and the metric compared."""

    model: list[str]
    baseline: list[str]
    metric: str
    higher_is_better: bool = False


@dataclass(frozen=True)
class DomainSpec:
    """A domain as the CLI sees it: its config folder, model registry, datasets, extra verbs and demo."""

    name: str
    conf_dir: Path
    models: Registry
    datasets: Mapping[str, str] = field(default_factory=dict)
    tasks: Mapping[str, Callable[[Any], dict]] = field(default_factory=dict)
    demo: DemoSpec | None = None

    def verbs(self) -> list[str]:
        from polyformer.core.training.runner import DEFAULT_TASKS

        return sorted(set(DEFAULT_TASKS) | set(self.tasks))

    def task_fn(self, verb: str) -> Callable[[Any], dict]:
        from polyformer.core.training.runner import DEFAULT_TASKS

        return {**DEFAULT_TASKS, **self.tasks}[verb]


def load_domain(name: str) -> DomainSpec:
    """The DomainSpec of `polyformer.<name>`; a domain not built yet raises ImportError."""
    return importlib.import_module(f"polyformer.{name}.app").DOMAIN


def available_domains() -> dict[str, DomainSpec]:
    """The domains installed in this checkout, by name."""
    found = {}
    for name in DOMAIN_NAMES:
        if importlib.util.find_spec(f"polyformer.{name}") is None:
            continue
        if importlib.util.find_spec(f"polyformer.{name}.app") is None:
            continue
        found[name] = load_domain(name)
    return found


def hydra_main(spec: DomainSpec, argv: list[str] | None = None) -> None:
    """Run the domain's Hydra app: compose conf/train.yaml with the command-line overrides, run `cfg.task`.

    `argv` replaces sys.argv[1:] (the CLI passes the overrides; `-m` multirun works as in any Hydra app).
    """
    import hydra
    from omegaconf import DictConfig

    if argv is not None:
        main_file = Path(importlib.import_module(f"polyformer.{spec.name}.__main__").__file__)
        sys.argv = [str(main_file), *argv]

    @hydra.main(config_path=str(spec.conf_dir), config_name="train", version_base="1.3")
    def _main(cfg: DictConfig) -> Any:
        verb = str(cfg.task)
        if verb not in spec.verbs():
            raise PolyformerError(f"'{verb}' is not a verb of {spec.name}; its verbs are {', '.join(spec.verbs())}")
        try:
            result = spec.task_fn(verb)(cfg)
        except PolyformerError as exc:
            print(f"polyformer {verb} {spec.name}: error: {exc}", file=sys.stderr)
            sys.exit(2)
        metric = cfg.get("monitor")
        if isinstance(result, dict) and metric in result:
            return result[metric]
        return None

    _main()
