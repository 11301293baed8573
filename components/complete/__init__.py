"""Tab 7, complete: layout.py (widgets and wiring), handlers.py (the work), view.py (the player's messages, the
completions figure and words), lessons.py (its checked prompts)."""

from .layout import build

__all__ = ["build"]
