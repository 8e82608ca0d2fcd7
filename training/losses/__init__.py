"""One module per loss, each documented with the formula it implements."""

from training.losses.crsd import CRSDLoss, ViewOutputs
from training.losses.infonce import InfoNCELoss, info_nce
from training.losses.kl import ViewKLLoss
from training.losses.relevance import RelevanceLoss

__all__ = ["CRSDLoss", "InfoNCELoss", "RelevanceLoss", "ViewKLLoss", "ViewOutputs", "info_nce"]
