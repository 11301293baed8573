"""Command-line entry points: preset training (python -m adiff.train) and classifier training."""
