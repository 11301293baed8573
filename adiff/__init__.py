"""adiff: a small, correct PyTorch diffusion library for learning and teaching (no UI imports here)."""
