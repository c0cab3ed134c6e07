"""Export plain (non-supernet) PyTorch networks to deployable files.

- :mod:`nse_hw.export.tflite` — float32 and int8 ``.tflite`` with NHWC input (litert-torch).
- :mod:`nse_hw.export.onnx` — ``.onnx`` with NCHW input (torch.onnx dynamo exporter).
"""
