"""Generative adversarial networks and the data they learn from."""
