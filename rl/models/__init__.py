"""Policies of polyformer.rl, built by name from MODELS: "dt" (Decision Transformer, any mixer) and "bc" (MLP)."""

from polyformer.rl.models.bc import BCPolicy
from polyformer.rl.models.decision_transformer import DecisionTransformerNet
from polyformer.rl.models.registry import MODELS

__all__ = ["MODELS", "BCPolicy", "DecisionTransformerNet"]
