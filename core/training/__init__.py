"""Training harness every domain shares: optimizers, callbacks, checkpoints, runners."""
