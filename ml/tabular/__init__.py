"""Tabular MDPs and dynamic programming: grid worlds, Bellman kernels, the DP solvers."""
