"""Merge benchmark: merges with known recipes, decomposed by ``modelprint decompose``."""
