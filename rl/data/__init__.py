"""Offline RL data: embedded collection, Minari and D4RL readers, context windows and the DataModule."""
