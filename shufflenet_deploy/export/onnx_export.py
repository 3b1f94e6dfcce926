"""PyTorch -> ONNX, checked.

Exporter: the TorchScript-based `torch.onnx.export(dynamo=False)` at opset 17. Why not the dynamo exporter
(torch's default since 2.9): it needs onnxscript (not in our pinned set) and emits opset-18 graphs whose op
patterns onnx2tf 1.29 handles less well; the TorchScript exporter folds BatchNorm into the convolutions in eval
mode and gives onnx2tf exactly the Conv/Reshape/Transpose graph it is tuned for. Opset 17 is the newest opset
onnx2tf 1.29's test suite covers broadly and every op ShuffleNet needs exists unchanged since opset 13.
Static shape: batch 1, NCHW, so onnx2tf can fix every tensor shape.
"""
from __future__ import annotations

import warnings
from pathlib import Path

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_onnx(model, input_size: int | tuple[int, int], path: Path) -> None:
    """Export at a fixed input size: an int for square inputs, or (height, width)."""
    import onnx
    import torch

    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    dummy = torch.zeros(1, 3, height, width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice for the TorchScript path
        torch.onnx.export(model.eval(), (dummy,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def onnx_op_histogram(path: Path) -> dict[str, int]:
    import onnx
    from collections import Counter

    return dict(sorted(Counter(node.op_type for node in onnx.load(str(path)).graph.node).items()))
