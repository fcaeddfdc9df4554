"""Inverse reinforcement learning: rewards learned from demonstrations."""
