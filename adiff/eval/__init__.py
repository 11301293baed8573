"""Evaluation: distances between sample sets, diversity, reward statistics, the glyph classifier."""
