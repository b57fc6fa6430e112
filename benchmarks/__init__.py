"""Speed and accuracy comparisons of polyformer with peer libraries (run from the repository root)."""
