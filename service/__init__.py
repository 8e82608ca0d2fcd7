"""The relevance service: FastAPI router, dynamic batcher, ONNX Runtime backend. Never imports torch."""
