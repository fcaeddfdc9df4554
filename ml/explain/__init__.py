"""Seeing inside trained models: attributions, Grad-CAM, activations, embeddings, gradient
flow and confusion matrices, for any model kind that exposes its network
(`ml.explain.targets`), never copied into each algorithm."""
