"""ONNX export, TensorRT engines and parity checks against PyTorch."""
