"""Tab 3, reverse diffusion: layout.py (widgets and wiring), handlers.py (the work), view.py (what it looks like)."""

from .layout import build

__all__ = ["build"]
