"""The model bundle: a versioned folder that export writes and the service loads.

Layout::

    bundle.json        manifest (see :class:`BundleManifest`)
    model.onnx         fused fp32 graph
    model.int8.onnx    dynamically quantised graph for CPU
    model.fp16.onnx    optional, for GPU
    tokenizer.json     Hugging Face fast tokenizer
"""

from relevance.bundle.errors import BundleError
from relevance.bundle.loader import Bundle, load_bundle, sha256_file
from relevance.bundle.manifest import BundleManifest, FileEntry, GraphEntry, ServiceTextTemplate

__all__ = [
    "Bundle",
    "BundleError",
    "BundleManifest",
    "FileEntry",
    "GraphEntry",
    "ServiceTextTemplate",
    "load_bundle",
    "sha256_file",
]
