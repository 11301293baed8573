"""Steering a model towards a reward: sampling-time guidance (reward gradients, classifier-free guidance), rewards,
the expression language, the trajectory buffer, reward-guided adaptation, reflow and inpainting."""
