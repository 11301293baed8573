"""Learned parts and their plumbing: denoisers (nn.Modules only), EMA, the typed config, checkpoints."""
