"""Tab 1, noise schedules: layout.py (widgets and wiring), handlers.py (the checks and the curves), view.py (the
figure and the words)."""

from .layout import build

__all__ = ["build"]
