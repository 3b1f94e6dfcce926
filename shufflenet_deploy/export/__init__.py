"""Export: PyTorch -> ONNX -> TFLite (fp32/fp16/int8), lowered for XNNPACK, every step verified.

pipeline.py drives the stages; onnx_export.py, tflite_convert.py (+ onnx2tf_worker.py), lower.py
(+ tflite_rewrite.py), verify.py and tflite_inspect.py each do one job.
"""
