"""Recipes: the stages chained end to end (annotate -> train -> quantisation-aware -> gated export).

Each stage keeps its own config and code in its package; a recipe only decides the order, where the
intermediate folders go and which finished stages it can skip. Needs the ``[train]`` extra.
"""
