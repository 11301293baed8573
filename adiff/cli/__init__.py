"""Command-line entry points: preset training (python -m adiff.train; on several processes with torchrun, see
adiff.cli.distributed) and classifier training (python -m adiff.cli.classifier)."""
