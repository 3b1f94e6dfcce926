"""Benchmarking: latency statistics (`stats`), the TFLite `benchmark_model` output parser (`benchmark_model`).

Nothing is imported here so that `sdeploy bench --parse` does not pay for numpy, and so that the device
harness (harness.py) and its backends (backends.py) can pick what they need.
"""
