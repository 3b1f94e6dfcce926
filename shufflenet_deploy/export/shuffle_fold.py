"""ShuffleNet v2 with its channel split, concats and shuffles folded away (used by lower.py's `lower_torch`).

Why and the numbers: lower.py's docstring. How: every channel is tracked as a label (source tensor, channel).
A split, a concat or a channel shuffle only reorders labels, so none of them is computed. Each label is read by
exactly one convolution input (a stride-1 unit's branch2, a stride-2 unit's two branches, or conv5); that input is
built once, as one concat of whole tensors, in an order of our choosing, and the reading conv's input weights are
permuted to that order. To make the pieces whole tensors, the last 1x1 conv (+ BN, ReLU) of each branch is split
by output channel into one conv per reader. So there is no slice, and each piece feeds exactly one concat: TF's
int8 converter gives it that concat's scale (one tensor sliced into several concats got a requantize per concat).
The identity half of a stride-1 unit is never copied; its channels stay in the pieces that computed them.
Exact: convs, BatchNorms and ReLUs are per output channel, so permuting or splitting them changes no value.
"""
from __future__ import annotations

import copy
from collections import defaultdict

import torch
from torch import nn

Label = tuple  # (source key, channel)


class FoldedShuffleNetV2(nn.Module):
    """Runs `steps`: (key, block name, [input key]) runs a block; (key, None, [keys]) concatenates channels."""

    def __init__(self, model, steps: list[tuple], blocks: dict[str, nn.Module]):
        super().__init__()
        self.conv1, self.maxpool, self.fc = model.conv1, model.maxpool, model.fc
        self.blocks = nn.ModuleDict(blocks)
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {"stem": self.maxpool(self.conv1(x))}
        for key, block, inputs in self.steps:
            env[key] = self.blocks[block](env[inputs[0]]) if block else torch.cat([env[k] for k in inputs], 1)
        return self.fc(env["features"].mean((2, 3)))


def fold_shufflenet_v2(model) -> tuple[nn.Module | None, int]:
    """(folded copy of `model`, channel shuffles removed), or (None, 0) when it is not a zoo ShuffleNet v2."""
    from ..zoo.shufflenet_v2 import ShuffleNetV2, ShuffleV2Unit

    if type(model) is not ShuffleNetV2:
        return None, 0
    units = [u for name, stage in model.named_children() if name.startswith("stage") for u in stage]
    if not units or not all(type(u) is ShuffleV2Unit for u in units):
        return None, 0
    flow = _Flow()
    cur = flow.source("stem", model.conv1[0].out_channels)
    for i, unit in enumerate(units):
        cur = flow.unit(f"u{i}", unit, cur)
    flow.read("features", model.conv5, cur)
    return FoldedShuffleNetV2(copy.deepcopy(model), *_build(flow)).eval(), len(units)


class _Flow:
    """The symbolic pass: which labels each branch reads, grouped into the inputs ("takes") to materialize."""

    def __init__(self):
        self.channels: dict[str, int] = {}  # source key -> channels
        self.readers: list[tuple[str, nn.Module, list]] = []  # (output key, branch, input labels in true order)
        self.takes: list[frozenset] = []
        self.take_of: dict[Label, int] = {}

    def source(self, key: str, channels: int) -> list[Label]:
        self.channels[key] = channels
        return [(key, c) for c in range(channels)]

    def unit(self, name: str, unit, cur: list[Label]) -> list[Label]:
        """A ShuffleV2Unit on input labels `cur`: its output's labels in true channel order."""
        if unit.stride == 1:
            half = len(cur) // 2  # x.chunk(2, dim=1) of an even channel count
            out = cur[:half] + self.read(f"{name}b2", unit.branch2, cur[half:])
        else:
            out = self.read(f"{name}b1", unit.branch1, cur) + self.read(f"{name}b2", unit.branch2, cur)
        return [out[i] for i in _shuffle_order(unit.shuffle, len(out))]

    def read(self, key: str, branch: nn.Module, labels: list[Label]) -> list[Label]:
        members = frozenset(labels)
        if members not in self.takes:  # a stride-2 unit's two branches read one input
            self.takes.append(members)
            self.take_of.update((label, len(self.takes) - 1) for label in labels)
        self.readers.append((key, branch, labels))
        return self.source(key, _last_conv(branch).out_channels)


def _build(flow: _Flow) -> tuple[list[tuple], dict[str, nn.Module]]:
    """Steps and blocks: each take one concat of pieces, each branch a trunk plus one head per piece."""
    pieces = _pieces(flow)
    steps, blocks, built = [], {}, set()
    for key, branch, labels in flow.readers:
        take = flow.take_of[labels[0]]
        parts = pieces[take]
        source = parts[0][0] if len(parts) == 1 else f"in{take}"
        if take not in built:
            built.add(take)
            steps += [(source, None, [p for p, _ in parts])] if len(parts) > 1 else []
        module = copy.deepcopy(branch)
        position = {label: i for i, label in enumerate(labels)}
        _permute_input(module, [position[label] for _, chans in parts for label in chans])
        heads = {p: chans for ps in pieces.values() for p, chans in ps if chans[0][0] == key}
        if len(heads) <= 1:  # read whole by one input (or by the classifier: conv5)
            blocks[key] = module
            steps.append((key, key, [source]))
            continue
        trunk, tail = _split_last_conv(module)
        blocks[f"{key}_trunk"] = trunk
        steps.append((f"{key}_trunk", f"{key}_trunk", [source]))
        for piece, chans in heads.items():
            blocks[piece] = _rows(tail, [c for _, c in chans])
            steps.append((piece, piece, [f"{key}_trunk"]))
    return steps, blocks


def _pieces(flow: _Flow) -> dict[int, list[tuple[str, list[Label]]]]:
    """take -> [(piece key, labels)]: each source's channels grouped by the take that reads them, smallest piece
    first (lower_tflite nests a concat of more than 5 inputs from the front, so the copy twice is small)."""
    pieces = defaultdict(list)
    for src, size in flow.channels.items():
        by_take = defaultdict(list)
        for c in range(size):
            if (src, c) in flow.take_of:  # conv5's output goes to the classifier
                by_take[flow.take_of[(src, c)]].append((src, c))
        for take, labels in by_take.items():
            pieces[take].append((src if len(by_take) == 1 else f"{src}_{take}", labels))
    return {take: sorted(ps, key=lambda p: len(p[1])) for take, ps in pieces.items()}


def _split_last_conv(seq: nn.Sequential) -> tuple[nn.Sequential, list[nn.Module]]:
    layers = list(seq)
    at = max(i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d))
    return nn.Sequential(*layers[:at]), layers[at:]


def _rows(tail: list[nn.Module], rows: list[int]) -> nn.Sequential:
    """[conv, BatchNorm?, ReLU?] keeping only the output channels `rows`."""
    index = torch.as_tensor(rows)
    conv = tail[0]
    if conv.groups != 1:
        raise ValueError("only a dense conv can be split by output channel")
    out = [nn.Conv2d(conv.in_channels, len(rows), conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                     bias=conv.bias is not None)]
    _copy_rows(conv, out[0], index, ("weight", "bias"))
    for m in tail[1:]:
        if isinstance(m, nn.BatchNorm2d):
            out.append(nn.BatchNorm2d(len(rows), m.eps, m.momentum))
            _copy_rows(m, out[-1], index, ("weight", "bias", "running_mean", "running_var"))
        elif isinstance(m, nn.ReLU):
            out.append(nn.ReLU())
        else:
            raise ValueError(f"cannot split a branch ending in {type(m).__name__}")
    return nn.Sequential(*out).eval()


def _copy_rows(src: nn.Module, dst: nn.Module, index: torch.Tensor, names: tuple[str, ...]) -> None:
    with torch.no_grad():
        for name in names:
            if getattr(src, name) is not None:
                getattr(dst, name).copy_(getattr(src, name)[index])


def _shuffle_order(shuffle: nn.Module, channels: int) -> list[int]:
    """out[k] = in[order[k]] for the shuffle module, found by running it on the channel indices."""
    with torch.no_grad():
        idx = shuffle(torch.arange(channels, dtype=torch.float64).view(1, channels, 1, 1))
    return [int(round(v)) for v in idx.flatten().tolist()]


def _last_conv(seq: nn.Module) -> nn.Conv2d:
    return [m for m in seq.modules() if isinstance(m, nn.Conv2d)][-1]


def _permute_input(seq: nn.Module, perm: list[int]) -> None:
    """In place: `seq` applied to x[:, perm] gives what it gave on x. Depthwise convs and BatchNorms carry the
    permutation on (their channels are permuted along); the first dense conv absorbs it in its input weights."""
    index = torch.as_tensor(perm)
    with torch.no_grad():
        for m in seq.modules():
            if m is seq or isinstance(m, (nn.ReLU, nn.Identity, nn.Sequential)):
                continue
            if isinstance(m, nn.Conv2d) and m.groups == 1:
                m.weight.copy_(m.weight[:, index])
                return
            if isinstance(m, nn.Conv2d) and m.groups == m.in_channels == m.out_channels:
                params = (m.weight, m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                params = (m.weight, m.bias, m.running_mean, m.running_var)
            else:
                raise ValueError(f"cannot carry a channel permutation through {type(m).__name__}")
            for t in params:
                if t is not None:
                    t.copy_(t[index])
    raise ValueError("no dense convolution absorbs the channel permutation")
