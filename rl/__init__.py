"""polyformer.rl: offline reinforcement learning with the Decision Transformer on gymnasium and Minari/D4RL data."""
