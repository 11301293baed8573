"""Evaluation: distances between sample sets, diversity, reward statistics, the glyph classifier, the learned
density (log p_theta by the probability-flow ODE) and the data's."""
