"""Core of the relevance project: the model-bundle contract, data formats, metrics and the CLI.

Everything here is torch-free so that the serving path (``service/``) can depend on it.
"""

__version__ = "0.2.0"
