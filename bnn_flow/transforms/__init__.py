"""The compiler's graph transforms, one module per pipeline step (qonnx Transformation style)."""
