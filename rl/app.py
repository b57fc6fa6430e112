"""polyformer.rl as the harness sees it: config folder, models, datasets, verbs and the demo."""

from pathlib import Path

from polyformer.core.training.app import DemoSpec, DomainSpec
from polyformer.rl.models import MODELS
from polyformer.rl.tasks import collect, predict, rollout_eval, train

DOMAIN = DomainSpec(
    name="rl",
    conf_dir=Path(__file__).parent / "conf",
    models=MODELS,
    datasets={
        "embedded": "offline datasets collected here from gymnasium (LunarLander-v3 discrete and continuous, "
                    "Pendulum-v1) with scripted experts: random / medium / expert / replay flavours, Minari layout",
        "minari": "a local Minari dataset (data.dataset=<id>, data.root=<MINARI_DATASETS_PATH>); no download",
        "d4rl": "a D4RL-style HDF5 file (data.path=<file.hdf5>, env=hopper|halfcheetah|walker2d|<gymnasium id>)",
    },
    tasks={"train": train, "eval": rollout_eval, "collect": collect, "predict": predict},
    demo=DemoSpec(
        model=["experiment=demo", "model=dt_small"],
        baseline=["experiment=demo", "model=bc"],
        metric="test/normalized_score",
        higher_is_better=True,
    ),
)
