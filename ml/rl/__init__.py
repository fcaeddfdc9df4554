"""Deep reinforcement learning: replay, environments, evaluation and the agents."""
