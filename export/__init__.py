"""Export: student checkpoint -> ONNX graph -> fused / INT8 / FP16 graphs -> parity gate -> bundle."""
