"""The density tab's lessons (components/lesson.py), each checked through the tab's own handler."""

from __future__ import annotations

__all__ = ["LESSONS"]

LESSONS: list = []
