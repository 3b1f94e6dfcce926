"""Lowering: make the exported TFLite graph the one XNNPACK runs well (on by default; `--no-optimize` skips it).

DECISION (by experiment; numbers below): three small levels, each doing what only it can do cleanly.
1. PyTorch, before export (`lower_torch`, on a deep copy; the ORIGINAL model stays every parity reference):
   AvgPool2d(k, s, p, count_include_pad=True) -> depthwise Conv2d with constant 1/k^2 weights (exact). LiteRT's
   XNNPACK delegate does not take int8 AVERAGE_POOL_2D: each of the 3 avg-pool shortcuts cut the int8 graph
   (4-5 partitions) and ran on the slow builtin kernel. As a conv, TF's converter quantizes it per channel like any
   other (1/9 is exactly 127 * scale) and it joins the single XNNPACK partition. This was the biggest int8 win.
   ShuffleNet v2 (shuffle_fold.py; the manifest's `shuffles_folded`): its channel split, concats and channel
   shuffles are folded away, exactly. Each channel is tracked as (source tensor, channel), so split, concat and
   shuffle only relabel; each conv input is built once, as one CONCATENATION of whole conv outputs in an order of
   our choosing, and the reading conv's input weights are permuted to it; the last 1x1 conv (+BN, ReLU) of each
   branch is split by output channel into one conv per reader (a stride-1 unit's identity half is never copied).
   Why: onnx2tf 1.29 could not convert v2 at all, lowered or not: `chunk` exports Slices with Shape-computed
   bounds, after which onnx2tf lost the channel axis ("input depth not a multiple of filter depth"). The folded
   graph is Conv/Concat/Relu only, nothing for onnx2tf's layout tracking to get wrong, and its TFLite file has
   no TRANSPOSE, RESHAPE or SLICE. Why whole-tensor pieces: TF's int8 CONCATENATION needs one scale for its
   inputs, so a tensor sliced into several concats got a full-tensor QUANTIZE per concat (49 in 0.5x); a piece
   that feeds one concat just takes that concat's scale (0 QUANTIZE). Not the "even/odd channels" trick of
   Megvii's v2 code: that equality holds in its shuffle convention, not ours (the paper's), and the identity half
   has no weights to fold a permutation into; tracking labels handles both. --no-optimize refuses v2 up front
   (`check_plain_export`): its plain graph fails in onnx2tf, and with static slices its int8 would not run.
2. ONNX, before onnx2tf (`lower_onnx`): MaxPool(pads) fed by a Relu -> Pad(0) + MaxPool(no pads) (exact, the
   input is >= 0). onnx2tf pads a MaxPool with -3.4e38 (PADV2, not taken by XNNPACK); worse, once the avg-pool
   was a conv, TF's int8 calibration put -3.4e38 into the stem's range (scale 1.3e36) and XNNPACK refused the
   graph. Done in ONNX because the PyTorch form (ZeroPad2d) exports its pads as a computed Cast, which broke
   onnx2tf's layout tracking further down; and onnx2tf runs without onnxsim here, which would fuse it back.
3. TFLite flatbuffer, after onnx2tf and after TF's int8 converter (`lower_tflite`, tflite_rewrite.py):
   - grouped CONV_2D with one channel per group -> DEPTHWISE_CONV_2D (onnx2tf loses the channel count after its
     NCHW round trip for the shuffle and emits groups=C convs);
   - each channel shuffle (onnx2tf: TRANSPOSE, RESHAPE, 5-D TRANSPOSE, RESHAPE, TRANSPOSE) is simulated on an index
     array, recognised as a group shuffle and rewritten as RESHAPE [HW,a,b] -> TRANSPOSE(2,1,0) -> TRANSPOSE(2,0,1)
     -> RESHAPE ("transpose2": 2 transposes instead of 3, both over large tiles);
   - PADV2 before MAX_POOL_2D on a provably non-negative input -> PAD (for graphs where step 2 did not apply);
   - the NHWC->NCHW TRANSPOSE onnx2tf puts before the global-average MEAN -> MEAN over the NHWC axes;
   - int8 HARD_SWISH (other codebases' models; XNNPACK takes it in fp32 only) -> ADD(+RELU6), MUL, MUL;
   - CONCATENATION of more than 5 inputs -> nested ones, smallest inputs inside (XNNPACK takes at most 5: v2's
     deep stage-3 units read up to 9 convs, and 4 such concats cut the graph into 5 partitions). Done here because
     TF's converter merges nested concats of the graph it is given back into one.
   onnx2tf's own options were no help: no option makes depthwise or shuffle come out differently (`-dgc` splits
   grouped convs: ~2x slower, per the reference notes), and an ONNX-level shuffle hint is translated back through
   its NCHW round trip. The flatbuffer is the artifact the device runs; each pass fires only on a pattern it can
   prove (constant perms/shapes, quantization params, fused activations) and parity is re-checked on the result.

Rejected by measurement:
   - shuffle as one TRANSPOSE [HW,a,b]->[HW,b,a] ("transpose1", fewest ops): many tiny a x b tiles, XNNPACK's
     transpose is slow on them — slower than onnx2tf's 3 large-tile transposes, esp. int8.
   - shuffle as GATHER: XNNPACK does not take GATHER: 17 partitions, far slower.
   - stride-2 3x3 convs as 4x4 SAME convs with a zero tap (`pad_fold`, removes the PADs onnx2tf writes for
     PyTorch's symmetric padding): exact, but slower — XNNPACK already folds a zero PAD into the next conv, and
     16 taps cost more than 9. Kept as an option (default "none").
   - removing the shuffle (it can't be folded into weights: it sits between two grouped convs, and folding it into
     either makes that conv dense, g x the MACs). Dropping it (wrong numbers, timing only) saved just 0.15 ms int8.
   - v2 with static slices x[:, :c], x[:, c:] instead of `chunk` (+ the other passes; "unfolded" below): converts,
     exactly, but onnx2tf wraps each unit in its NCHW round trip (4 TRANSPOSE, 2 RESHAPE, 2 STRIDED_SLICE; the
     TFLite shuffle pass does not match a chain that forks into two slices), and it converts only by luck: a
     Slice's axes come from Constant nodes, which onnx2tf does not move to NHWC, so the same Slice on a conv
     output cuts the H axis.
   - a grouped 1x1 conv in another form, per layer (issue 25's `--tune`: measured before building it;
     benchmarks/grouped_conv_forms.py, AMD EPYC AVX2): as SPLIT + one conv per group + CONCATENATION 0.91-1.45x
     the grouped CONV_2D's time, as one dense conv with block-diagonal weights (exact) 1.8-8x; each layer's
     fastest form summed is 0.5% (fp32) / 0.7% (int8) below the grouped form's sum, inside the noise. XNNPACK's
     grouped conv is already its best form of these layers, so there is nothing for a per-layer tuner to pick.
   - v2 folded with one conv per branch and a STRIDED_SLICE per piece: fp32 between the two (1.0x, another run:
     3.87 ms vs 3.76 folded, 4.06 unfolded), and int8 gets the QUANTIZE per concat described above.

NUMBERS (ShuffleNet v1 1x g3, 224 px, LiteRT 2.1 + XNNPACK, 1 thread, medians of 80 interleaved rounds; the
machine is shared, load ~2-3, so only ratios within one run count):
   passes on onnx2tf's plain graph      fp32 ms   int8 ms
     plain onnx2tf                        5.22      2.52
     + DEPTHWISE_CONV_2D                  5.04      2.50
     + shuffle transpose1                 4.98      2.82
     + shuffle gather                     6.21      4.13
   shuffle forms (depthwise + PAD done)   fp32      int8
     onnx2tf's 3 transposes               5.39      2.71
     transpose1 (1 small-tile)            5.49      3.09
     transpose2 (2 large-tile)            5.22      2.67   <- chosen
     3-D form of onnx2tf's 3              5.29      2.70
     no shuffle at all (not exact)        5.06      2.56
   levels (another run)                   fp32      int8 (XNNPACK partitions)
     plain onnx2tf                        6.74      3.24 (5)
     TFLite passes only                   6.50      3.18 (4: the avg-pools)
     + avg-pool conv + ONNX max-pool pad  6.51      2.59 (1)   <- default
     + pad_fold stem                      6.90      2.85 (1)
     + pad_fold all                       6.92      2.91 (1)
   The shuffle forms are within noise of each other except transpose1 (consistently slower in int8) and gather
   (far slower); benchmarks/results/lowering.txt repeats this ablation on onnx2tf's plain graph in the same run as
   the peers ("onnx2tf+passes ..." rows).

v2 NUMBERS (224 px, LiteRT 2.1 + XNNPACK, 1 thread, medians of 300 interleaved rounds, BN randomized; load ~0.8):
   ops: CONV_2D/DEPTHWISE/CONCATENATION/TRANSPOSE/RESHAPE/STRIDED_SLICE (nodes), the same in fp32 and int8
                      ops                          fp32 ms   int8 ms   XNNPACK partitions (fp32, int8)
     0.5x unfolded    37/19/16/58/32/26 (199)       1.42      0.82      1, 1
     0.5x folded      86/19/20/0/0/0 (136)          1.39      0.83      1, 1    <- default
     1.0x unfolded    37/19/16/58/32/26 (199)       4.04      1.66      1, 1
     1.0x folded      90/19/20/0/0/0 (140)          3.80      1.58      1, 1    <- default
   0.5x @ 64 px, two runs of 400 rounds: within noise (fp32 0.246 vs 0.233 and 0.244 vs 0.246 ms folded vs
   unfolded; int8 0.117 vs 0.121 and 0.114 vs 0.117 ms).
   Folded vs the original PyTorch model: fp32 max |diff| / max |ref| 9e-7 (0.5x and 1.0x); int8 vs fp32 cosine
   0.9999 on digits images. The fold trades ~60 data-movement ops for ~50 small convs (the split heads): a wash
   at 0.5x, -6% fp32 / -5% int8 at 1.0x, where the copies it removes are larger.

WHAT LIMITS IT (benchmarks/results/lowering.txt, 2026-11-28 12:13, 1 thread, medians of 40 interleaved rounds,
   3 interpreters per variant; ratios within that one run, LiteRT 2.1 / 2.3): sdeploy int8 / onnx2tf int8 =
   0.88 / 0.84 (g3 1x), 0.82 / 0.82 (g8 1x), 0.77 / 0.87 (trained g3 0.5x @64), 0.89 / 0.83 (trained g8 0.5x
   @80); against onnx2tf's own CLI int8 (`-oiqt -cind`, same ONNX and images) 0.91 / 0.84, 0.81 / 0.82, 0.79 /
   0.86, 0.81 / 0.80: issue 8's "<= 0.6x" is missed. sdeploy fp32 / onnx2tf fp32 = 0.92-1.04: "<= 0.8x" is
   missed. Met: int8 <= 0.9x litert-torch PT2E int8 (0.70-0.80), and int8 faster than every fp32 (sdeploy,
   onnx2tf, litert-torch, onnxruntime, ncnn: 0.25-0.82). On this host onnx2tf's int8, its CLI's included, is
   already ~2x faster than its fp32 (the issue's "int8 slower than fp32" did not reproduce on LiteRT 2.1 or 2.3).
   Per-op times (each op cut out into its own model, benchmarks/lowering.py --profile; a zero PAD XNNPACK folds
   into its conv counted 0, see tflite/ops.py), g3 1x, same run:
     int8  onnx2tf 2.45 ms = CONV_2D x49 1.42 + AVERAGE_POOL_2D x3 0.37 + ADD 0.23 + PADV2 0.17 + TRANSPOSE x49
           0.12 + PAD 0.05 + RESHAPE 0.04; sdeploy 2.00 ms = CONV_2D x33 1.17 + DEPTHWISE x19 0.28 + ADD 0.23 +
           PAD (before the max-pool) 0.14 + TRANSPOSE x32 0.10 + RESHAPE 0.04 + rest 0.04
     fp32  onnx2tf 4.68 ms, sdeploy 4.65 ms = CONV_2D 3.50 + ADD 0.32 + DEPTHWISE 0.26 + TRANSPOSE 0.17 + PAD 0.15
           + RESHAPE 0.12 + rest 0.14
   Data movement (TRANSPOSE, RESHAPE, PAD, CONCATENATION) is 0.29 of sdeploy's 2.00 int8 ms and 0.47 of its 4.65
   fp32 ms: deleting ALL of it would leave int8 at ~0.75x and fp32 at ~0.90x of onnx2tf — the targets cannot be
   reached by rewriting the graph. What is left is the grouped 1x1 convs (per-group GEMMs of 20-80 channels), the
   depthwise convs and the residual ADDs, which run the same XNNPACK kernels in both graphs. Next steps that could
   move the ratio: per-group channel counts that fit XNNPACK's GEMM tiles (a model change), a runtime with faster
   grouped-conv kernels, or (fp32) fp16 inference on hardware that has it; on the shuffle, nothing measurable is
   left (dropping it entirely, wrong numbers, saved ~5%).
"""
from __future__ import annotations

import copy
from pathlib import Path

from ..model_meta import ModelMeta

# onnxsim (which onnx2tf runs by default) fuses our explicit zero Pad back into MaxPool, and onnx2tf then pads
# with the dtype minimum (PADV2); our TorchScript export is already constant-folded, so the lowered path skips it.
ONNX2TF_OPTIONS = {"not_use_onnxsim": True}
SHUFFLE_MODES = ("transpose2", "transpose1", "gather", "keep")
DEFAULT_SHUFFLE = "transpose2"
# what a lowering pass did: rewrite name -> how many times (the manifest's `lowering` block, read by people and tests)
RewriteCounts = dict[str, int]


def lower_torch(model, input_size: int | tuple[int, int], *,
                pad_fold: str = "none") -> tuple[object, RewriteCounts]:
    """A deploy copy of `model`: ShuffleNet v2's split/concat/shuffle folded into its convs (shuffle_fold.py),
    avg-pools as depthwise convs, and (optionally) stride-2 PADs folded into the kernels.

    pad_fold: "stem" (non-depthwise convs + the avg-pool convs), "all" (also depthwise convs) or "none".
    """
    import torch
    from torch import nn

    from ..zoo.layers import ChannelPermutation, ChannelShuffle
    from .shuffle_fold import fold_shufflenet_v2

    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    deploy = copy.deepcopy(model).eval()
    folded, shuffles_folded = fold_shufflenet_v2(deploy)  # None unless a ShuffleNet v2
    deploy = folded if folded is not None else deploy
    shapes: dict[str, tuple] = {}

    def record(name):
        def hook(module, inputs, output):  # returns None: the output is kept
            shapes.setdefault(name, tuple(inputs[0].shape))
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in deploy.named_modules()
             if isinstance(m, (nn.AvgPool2d, nn.Conv2d, ChannelShuffle))]
    with torch.no_grad():
        deploy(torch.zeros(1, 3, height, width))
    for h in hooks:
        h.remove()

    report = {"avgpool_to_depthwise": 0, "pad_folded_convs": 0, "shuffles_folded": shuffles_folded,
              "shuffles_as_permutation": 0}
    for name, module in list(deploy.named_modules()):
        if name not in shapes:
            continue
        shape = shapes[name]
        if isinstance(module, ChannelShuffle):
            _set(deploy, name, ChannelPermutation(module.permutation(shape[1])))
            report["shuffles_as_permutation"] += 1
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


def lower_onnx(path: Path) -> RewriteCounts:
    """In place: residual Add(x, y) of two tensors -> Sum(x, y); MaxPool(pads) fed by a Relu -> Pad(zeros, constant
    pads) + MaxPool(no pads). Fed by an op with a negative least value b (HardSwish -3/8, Clip(min<0)): the same
    between Add(-b) and Add(b), exact too; fed by anything unbounded: left (PADV2, its own XNNPACK partition).

    Sum: onnx2tf 1.29's Add handler has a "rescue guard" that, for a 4-D add, compares the TF (NHWC) output shape
    with the ONNX (NCHW) one, finds them different and transposes both inputs to NCHW; the next Conv's forced
    NHWC transposition then runs, but its depthwise test still reads the stale NCHW shape, so a grouped conv whose
    input is g pixels wide (W == groups) is built as a depthwise conv and the conversion fails ("Dimensions must
    be equal ... [1,3,3,19200], [120]" for g=3 at 96 px). Sum has no such heuristics (tf.add_n on the tensors as
    they are); tflite_rewrite.add_n_to_add makes it a plain ADD again. This, not the channel shuffle, was what
    broke ShuffleNet v1 at every input size whose stage is g pixels wide (the noshuffle variant failed alike).

    Exact: the input is non-negative and every window keeps a real element (pads < kernel), so a zero never beats
    the maximum. Why: onnx2tf pads a padded MaxPool with the dtype's minimum (PADV2, -3.4e38). XNNPACK does not
    take PADV2, and TF's int8 calibration then records -3.4e38 in the range shared by PADV2/MAX_POOL and their
    producer (seen: scale 1.3e36 on the stem output once the avg-pool that used to pin that range became a conv,
    and XNNPACK refusing the whole int8 graph). A Pad with a constant-initializer pads list converts to a plain PAD.
    (The same rewrite in PyTorch, ZeroPad2d, exports pads as a computed Cast, which broke onnx2tf's layout
    tracking downstream.)
    """
    import numpy as np
    import onnx
    import onnx_graphsurgeon as gs

    original = onnx.load(str(path))
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(original))  # the Add test below needs shapes
    sums = 0
    for node in graph.nodes:  # residual adds -> Sum (see the docstring)
        if node.op == "Add" and len(node.inputs) == 2 and all(
                isinstance(i, gs.Variable) and i.shape is not None and len(i.shape) == 4
                and np.dtype(i.dtype) == np.float32 for i in node.inputs):
            node.op = "Sum"
            sums += 1
    rewritten = 0
    for node in list(graph.nodes):
        if node.op != "MaxPool" or node.attrs.get("auto_pad", "NOTSET") != "NOTSET" or node.attrs.get("ceil_mode", 0):
            continue
        pads, kernel = list(node.attrs.get("pads", [])), list(node.attrs["kernel_shape"])
        if len(kernel) != 2 or not any(pads) or any(p >= kernel[i % 2] for i, p in enumerate(pads)):
            continue
        x = node.inputs[0]
        bound = _lower_bound(x.inputs[0]) if len(x.inputs) == 1 else None
        if bound is None or len(node.outputs) != 1:
            continue
        source = x
        if bound < 0:  # max(x) = max(x - b) + b, and x - b >= 0: zero padding is exact on the shifted input
            source = gs.Variable(f"{x.name}_shifted", dtype=x.dtype)
            graph.nodes.append(gs.Node("Add", name=f"{node.name}_shift", inputs=[
                x, gs.Constant(f"{node.name}_shift_by", np.array(-bound, np.float32))], outputs=[source]))
            pooled, back = gs.Variable(f"{node.outputs[0].name}_shifted", dtype=x.dtype), node.outputs[0]
            node.outputs = [pooled]
            graph.nodes.append(gs.Node("Add", name=f"{node.name}_unshift", inputs=[
                pooled, gs.Constant(f"{node.name}_unshift_by", np.array(bound, np.float32))], outputs=[back]))
        padded = gs.Variable(f"{x.name}_zero_padded", dtype=x.dtype)
        onnx_pads = np.array([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]], np.int64)
        graph.nodes.append(gs.Node("Pad", name=f"{node.name}_zero_pad", attrs={"mode": "constant"},
                                   inputs=[source, gs.Constant(f"{node.name}_zero_pads", onnx_pads)],
                                   outputs=[padded]))
        node.inputs[0] = padded
        node.attrs["pads"] = [0, 0, 0, 0]
        rewritten += 1
    if rewritten or sums:
        graph.cleanup().toposort()
        model = gs.export_onnx(graph)
        model.ir_version = original.ir_version  # graphsurgeon writes the newest IR, which onnxruntime may not read
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    return {"maxpool_zero_pad": rewritten, "residual_add_as_sum": sums}


def _lower_bound(producer) -> float | None:
    """The least value PRODUCER (a graphsurgeon node) can output, where its op fixes one: ReLU 0 (our zoo's
    stems), and for other codebases' stems HardSwish -3/8, ReLU6/Clip their minimum, sigmoids 0."""
    import numpy as np

    if producer.op in ("Relu", "Sigmoid", "HardSigmoid"):
        return 0.0
    if producer.op == "HardSwish":
        return -0.375
    if producer.op == "Clip":
        low = producer.inputs[1] if len(producer.inputs) > 1 else None
        value = getattr(low, "values", None)
        return None if value is None or np.size(value) != 1 or not np.isfinite(value) else float(value)
    return None


def lower_tflite(src: Path, dst: Path, *, shuffle: str = DEFAULT_SHUFFLE) -> dict[str, int | str]:
    """Rewrite a .tflite (fp32, fp16 or int8) into `dst`; return what was done (rewrites counted, node and
    TRANSPOSE counts before and after, the shuffle form)."""
    from . import tflite_rewrite as tr

    if shuffle not in SHUFFLE_MODES:
        raise ValueError(f"shuffle mode {shuffle!r} not in {SHUFFLE_MODES}")
    g = tr.Graph.load(src)
    before = g.histogram()
    done = {"add_n_to_add": tr.add_n_to_add(g),
            "depthwise": tr.grouped_to_depthwise(g),
            "padv2_to_pad": tr.padv2_to_pad(g),
            "data_movement_chains": tr.fold_data_movement(g, shuffle),
            "transpose_into_mean": tr.transpose_into_mean(g),
            "wide_concats_split": tr.split_wide_concats(g),
            "int8_hard_swish": tr.int8_hard_swish(g)}
    g.save(dst)
    after = tr.Graph.load(dst).histogram()
    return {**done, "shuffle": shuffle, "nodes_before": sum(before.values()), "nodes_after": sum(after.values()),
            "transposes_before": before.get("TRANSPOSE", 0), "transposes_after": after.get("TRANSPOSE", 0)}


def check_plain_export(model, meta: ModelMeta) -> None:
    """--no-optimize (onnx2tf's plain output) cannot convert some graphs: say so in one line before a conversion
    that would fail after a minute, naming the default path, which converts them.

    - ShuffleNet v2: its `x.chunk(2, dim=1)` exports as Slices with Shape-computed bounds, after which onnx2tf 1.29
      loses the channel axis ("input depth not a multiple of filter depth"). Static slices would convert in fp32,
      but int8 would still not run: the padded MaxPool's -3.4e38 lands in the stem's int8 range (scale 1.3e36) and
      XNNPACK refuses the graph. Both are what the default lowering rewrites away.
    - ShuffleNet v1 at an input size that makes a stage exactly g pixels wide (W/8, W/16 or W/32 == g, e.g. g=3 at
      96 px, g=8 at 64, 128 or 256): onnx2tf's residual-Add handler leaves its output in NCHW and the next grouped
      conv's depthwise test then compares the group count with the width (lower_onnx says how; the default path
      sends those adds as Sum).
    """
    from ..complexity import count_complexity
    from ..errors import UserError
    from ..sizes import size_str
    from ..zoo.shufflenet_v2 import ShuffleNetV2

    if isinstance(model, ShuffleNetV2):
        raise UserError("ShuffleNet v2 cannot be exported with --no-optimize: onnx2tf 1.29 cannot convert its plain "
                        "graph (the channel split loses the channel axis)",
                        "drop --no-optimize; the default lowered export converts it exactly")
    cx = count_complexity(meta.model, input_size=meta.input_size, num_classes=meta.num_classes, **meta.options)
    for layer in cx.layers:
        if layer.kind == "group_conv" and len(layer.in_shape) == 3 and layer.in_shape[2] == layer.groups:
            raise UserError(f"{meta.model} at {size_str(meta.input_size)} px cannot be exported with "
                            f"--no-optimize: a stage is {layer.groups} px wide, equal to its group count, and "
                            "onnx2tf 1.29 then builds the grouped convs wrongly",
                            "drop --no-optimize: the default lowered export converts every input size")
