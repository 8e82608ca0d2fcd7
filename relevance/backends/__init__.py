"""Model runtimes behind one interface: :class:`Backend`, ONNX Runtime and OpenVINO (imported only when a graph needs it)."""

from relevance.backends.base import Backend
from relevance.backends.onnxruntime import OnnxBackend, resolve_providers
from relevance.backends.openvino import OpenVinoBackend

__all__ = ["Backend", "OnnxBackend", "OpenVinoBackend", "resolve_providers"]
