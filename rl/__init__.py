"""polyformer.rl: offline reinforcement learning with the Decision Transformer on gymnasium, Minari and D4RL data.

    from polyformer.rl import DecisionTransformer
    policy = DecisionTransformer.load_from_checkpoint("runs/rl/train/.../checkpoints/last.ckpt")
    policy.rollout(target_return=250, episodes=10)       # {"returns": [...], "lengths": [...]}

See rl/README.md for datasets, returns-to-go at inference, normalised scores and the benchmark.
"""

from polyformer.rl.data.datamodule import OfflineRLDataModule
from polyformer.rl.module import DecisionTransformer, DecisionTransformerModule

__all__ = ["DecisionTransformer", "DecisionTransformerModule", "OfflineRLDataModule"]
