"""Tab 6, guidance: layout.py (widgets and wiring), handlers.py (the
work), view.py (panels, the figure and words)."""

from .layout import build

__all__ = ["build"]
