"""One module per algorithm, each readable top to bottom."""
