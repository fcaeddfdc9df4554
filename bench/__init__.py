"""Benchmarks against the anchors, side by side in one run: `make bench`."""
