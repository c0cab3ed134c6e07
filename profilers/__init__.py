"""Device profilers: run exported blocks and networks on a device and time them.

- :mod:`nse_hw.profilers.host` — LiteRT (XNNPACK) and ONNX Runtime runners on this machine.

Reached only from the CLI; builds on :mod:`nse_hw.export` and :mod:`nse_hw.latency`.
"""
