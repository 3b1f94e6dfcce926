"""Lowering: make the exported TFLite graph the one XNNPACK runs well (on by default; `--no-optimize` skips it).

DECISION (by experiment, numbers below): two levels, each doing what it does cleanly —
1. PyTorch, before ONNX export (`lower_torch`, on a deep copy; the original model stays the parity reference):
   - AvgPool2d(k, s, p, count_include_pad=True) -> depthwise Conv2d with constant 1/k^2 weights (exact: the same
     sum divided by the same k^2). int8 AVERAGE_POOL_2D is not taken by XNNPACK (it ran on LiteRT's builtin
     kernel, one partition break each) and onnx2tf emitted it as PAD + AVERAGE_POOL_2D; the conv is quantized
     per channel by TF's converter like any other (1/9 is exactly 127 * scale) and lands in XNNPACK.
   - stride-2 Conv2d (k odd, padding k//2) on an even input -> kernel k+1 with a zero last row/column. PyTorch's
     padding is symmetric, TFLite's SAME pads the extra row at the bottom for stride 2, so onnx2tf had to write a
     separate PAD before the conv; with k+1 taps, SAME padding is exactly PyTorch's and the PAD disappears.
     Applied to the stem conv (3 input channels, where the PAD was slowest) and the avg-pool convs; not to the
     branch depthwise convs (see numbers: 16-tap depthwise is slower than PAD + 9 taps there).
2. TFLite flatbuffer, after onnx2tf and after TF's int8 converter (`lower_tflite`, passes in tflite_rewrite.py):
   - grouped CONV_2D with one channel per group -> DEPTHWISE_CONV_2D (onnx2tf only emits depthwise when it can
     see the input's channel count, which it loses after its NCHW round trip for the shuffle);
   - each channel shuffle (TRANSPOSE->RESHAPE->5-D TRANSPOSE->RESHAPE->TRANSPOSE from onnx2tf) -> the measured
     fastest exact NHWC form (see numbers);
   - PADV2(-inf/qmin) before MAX_POOL_2D on a post-ReLU input -> PAD(0), which XNNPACK takes (PADV2 it doesn't).
   Why not onnx2tf options or an ONNX rewrite for these: onnx2tf re-derives layouts per node, so an ONNX-level
   shuffle or depthwise hint is translated back through its NCHW round trip; the flatbuffer is the artifact the
   device runs, every pass fires only on a pattern it can prove (constant perms, quantization params, fused
   activations), and parity is checked on the result exactly as for onnx2tf's own output.

Every lowered artifact goes through the pipeline's usual parity checks (fp32 vs ONNX, ONNX vs the *original*
PyTorch model, int8 vs fp32), and the manifest records what was applied under "lowering".

NUMBERS (ShuffleNet v1 1x g3, 224 px, LiteRT 2.1 + XNNPACK, 1 thread, medians, interleaved, one run each):
{numbers}
"""
from __future__ import annotations

import copy
from pathlib import Path

# onnxsim (which onnx2tf runs by default) fuses our explicit zero Pad back into MaxPool, and onnx2tf then pads
# with the dtype minimum (PADV2); our TorchScript export is already constant-folded, so the lowered path skips it.
ONNX2TF_OPTIONS = {"not_use_onnxsim": True}
SHUFFLE_MODES = ("transpose2", "transpose1", "gather", "keep")
DEFAULT_SHUFFLE = "transpose2"


def lower_torch(model, input_size: int | tuple[int, int], *, pad_fold: str = "stem",
                maxpool_zero_pad: bool = False) -> tuple[object, dict]:
    """A deploy copy of `model` with avg-pools as depthwise convs and stride-2 PADs folded into the kernels.

    pad_fold: "stem" (non-depthwise convs + the avg-pool convs), "all" (also depthwise convs) or "none".
    """
    import torch
    from torch import nn

    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    deploy = copy.deepcopy(model).eval()
    shapes: dict[str, tuple] = {}
    relu_outputs: set[int] = set()  # data pointers of tensors a ReLU module produced
    after_relu: set[str] = set()

    def record(name):
        def hook(module, inputs, output):  # returns None: the output is kept
            shapes.setdefault(name, tuple(inputs[0].shape))
            if isinstance(module, nn.ReLU):
                relu_outputs.add(output.data_ptr())
            elif isinstance(module, nn.MaxPool2d) and inputs[0].data_ptr() in relu_outputs:
                after_relu.add(name)
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in deploy.named_modules()
             if isinstance(m, (nn.AvgPool2d, nn.Conv2d, nn.MaxPool2d, nn.ReLU))]
    with torch.no_grad():
        deploy(torch.zeros(1, 3, height, width))
    for h in hooks:
        h.remove()

    report = {"avgpool_to_depthwise": 0, "pad_folded_convs": 0, "maxpool_zero_pad": 0}
    for name, module in list(deploy.named_modules()):
        if name not in shapes:
            continue
        shape = shapes[name]
        if isinstance(module, nn.MaxPool2d) and name in after_relu and maxpool_zero_pad:
            replacement = _maxpool_zero_pad(module)
            if replacement is not None:
                _set(deploy, name, replacement)
                report["maxpool_zero_pad"] += 1
        elif isinstance(module, nn.AvgPool2d):
            conv = _avgpool_as_conv(module, shape[1])
            if conv is None:
                continue
            report["avgpool_to_depthwise"] += 1
            if pad_fold != "none":
                folded = _fold_pad(conv, shape)
                if folded is not None:
                    conv = folded
                    report["pad_folded_convs"] += 1
            _set(deploy, name, conv)
        elif isinstance(module, nn.Conv2d) and pad_fold != "none":
            depthwise = module.groups == module.in_channels and module.groups > 1
            if depthwise and pad_fold != "all":
                continue
            folded = _fold_pad(module, shape)
            if folded is not None:
                _set(deploy, name, folded)
                report["pad_folded_convs"] += 1
    return deploy, report


def _avgpool_as_conv(pool, channels: int):
    import torch
    from torch import nn

    k, s, p = (_pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size), _pair(pool.padding))
    if pool.ceil_mode or pool.divisor_override is not None or not (pool.count_include_pad or p == (0, 0)):
        return None
    conv = nn.Conv2d(channels, channels, k, s, p, groups=channels, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0 / (k[0] * k[1]))
    return conv.eval()


def _maxpool_zero_pad(pool):
    """MaxPool(k, s, p) on a non-negative (post-ReLU) input == ZeroPad(p) + MaxPool(k, s, 0): every window keeps
    at least one real element (p < k), and zeros never beat a non-negative maximum. onnx2tf then writes PAD
    (XNNPACK's) instead of PADV2(-inf), which also kept -inf out of the int8 calibration ranges (seen: a PADV2
    pad value leaking into its producer's range, scale 1e36, and XNNPACK refusing the graph)."""
    from torch import nn

    k, s, p, d = (_pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size), _pair(pool.padding),
                  _pair(pool.dilation))
    if pool.ceil_mode or pool.return_indices or d != (1, 1) or p == (0, 0) or p[0] >= k[0] or p[1] >= k[1]:
        return None
    return nn.Sequential(nn.ZeroPad2d((p[1], p[1], p[0], p[0])), nn.MaxPool2d(k, s, 0))


def _fold_pad(conv, shape):
    """Conv(k odd, stride 2, pad k//2) on an even input == Conv(k+1, stride 2, pad k//2) with a zero last tap,
    whose padding TFLite's SAME reproduces (so onnx2tf writes no PAD). None when the pattern does not hold."""
    import torch
    from torch import nn

    k, s, p, d = (_pair(conv.kernel_size), _pair(conv.stride), _pair(conv.padding), _pair(conv.dilation))
    h, w = shape[2], shape[3]
    if (s != (2, 2) or d != (1, 1) or conv.padding_mode != "zeros" or any(x % 2 == 0 for x in k)
            or p != (k[0] // 2, k[1] // 2) or h % 2 or w % 2 or isinstance(conv.padding, str)):
        return None
    new = nn.Conv2d(conv.in_channels, conv.out_channels, (k[0] + 1, k[1] + 1), 2, p, groups=conv.groups,
                    bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, :, : k[0], : k[1]] = conv.weight
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new.eval()


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _set(root, dotted: str, module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def lower_tflite(src: Path, dst: Path, *, shuffle: str = DEFAULT_SHUFFLE) -> dict:
    """Rewrite a .tflite (fp32, fp16 or int8) into `dst`; return what was done."""
    from . import tflite_rewrite as tr

    if shuffle not in SHUFFLE_MODES:
        raise ValueError(f"shuffle mode {shuffle!r} not in {SHUFFLE_MODES}")
    g = tr.Graph.load(src)
    before = g.histogram()
    done = {"depthwise": tr.grouped_to_depthwise(g),
            "padv2_to_pad": tr.padv2_to_pad(g),
            "data_movement_chains": tr.fold_data_movement(g, shuffle)}
    g.save(dst)
    after = tr.Graph.load(dst).histogram()
    return {**done, "shuffle": shuffle, "nodes_before": sum(before.values()), "nodes_after": sum(after.values()),
            "transposes_before": before.get("TRANSPOSE", 0), "transposes_after": after.get("TRANSPOSE", 0)}
