"""One module per loss, each documented with the formula it implements."""

from training.losses.relevance import RelevanceLoss

__all__ = ["RelevanceLoss"]
