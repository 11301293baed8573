"""Tab 2, the forward process: layout.py (widgets and wiring), handlers.py (the noised data), view.py (figures and
words)."""

from .layout import build

__all__ = ["build"]
