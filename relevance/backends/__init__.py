"""Model runtimes behind one interface: :class:`Backend` and its ONNX Runtime implementation."""

from relevance.backends.base import Backend
from relevance.backends.onnxruntime import OnnxBackend, resolve_providers

__all__ = ["Backend", "OnnxBackend", "resolve_providers"]
