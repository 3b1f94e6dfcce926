"""Channel splits, concats and shuffles found by what they do, not by how they are written (any ONNX graph).

A ShuffleNet moves channels between its convolutions with data-movement ops only, and every codebase writes them
differently: the shuffle as view/transpose/view (4-D or 5-D, either convention), reshape/permute, a Gather, or
fused with v2's split (Megvii: reshape to (c/2, 2, h*w), permute, index); the split as Split, Slice or chunk.
So instead of matching op patterns, each connected region of data-movement ops (Reshape, Transpose, Split, Slice,
Concat, Gather, Squeeze, Unsqueeze, Identity with constant parameters) is *run* on integer id arrays, one id per
element of each input. An output whose every channel is one whole channel of some input is a pure relabelling:
its channels are labels (input, channel), and the region computes nothing. Then:

- **fold** (ShuffleNet v2, lower.py's torch-level fold by pattern): when every reader of the region is a
  convolution that can absorb an input permutation (a dense conv by permuting its input weights; a depthwise conv
  by permuting its filters, when what reads its output through per-channel activations is dense convs), the
  region disappears. Each reader's input is one Concat of whole pieces, a piece being the channels of one input
  that the same readers read; an input cut into pieces is produced as one conv (+ its activations) per piece.
  Result: Conv/Concat/Relu only, each piece feeding one concat (TF's int8 converter gives it that concat's scale).
- **exact** (ShuffleNet v1, whose shuffle sits between grouped convs and cannot be absorbed): each output is
  rebuilt in its exact order from the inputs in canonical form: the input itself, one Gather(axis=1) for a
  permutation of one input (the form tflite_rewrite.py turns into the fast two-transpose shuffle), or a Concat of
  whole inputs and static channel Slices.
A region whose outputs are not relabellings (a head's flatten, a space-to-depth) is left as it is.
Exact: convs, biases and per-channel activations commute with a permutation of their channels; no value changes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .onnx_movement import MOVEMENT, attribute, run_movement

PER_CHANNEL = ("Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "LeakyRelu", "Elu", "Selu", "Softplus")

Label = tuple  # (input tensor name, channel)


@dataclass
class FoldReport:
    regions: int = 0        # regions of data-movement ops that were relabellings
    folded: int = 0         # removed into the convolutions that read them (v2)
    exact: int = 0          # rebuilt in canonical form (v1's shuffle)
    left: int = 0           # not relabellings, left as written
    split_convs: int = 0    # convolutions cut into pieces by output channel
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"regions": self.regions, "folded": self.folded, "exact": self.exact, "left": self.left,
                "split_convs": self.split_convs}


def fold_channels(model) -> FoldReport:
    """Rewrite MODEL (an onnx.ModelProto with static shapes, batch 1) in place; return what was done."""
    graph = _Graph(model)
    report = FoldReport()
    for region in graph.movement_regions():
        labels = graph.relabelling(region)
        if labels is None:
            report.left += 1
            continue
        report.regions += 1
        plan = graph.fold_plan(region, labels)
        if plan is not None:
            report.split_convs += graph.apply_fold(region, labels, plan)
            report.folded += 1
        else:
            graph.apply_exact(region, labels)
            report.exact += 1
    graph.finish()
    return report


class _Graph:
    def __init__(self, model):
        import onnx
        from onnx import numpy_helper

        self.onnx, self.model, self.g = onnx, model, model.graph
        self.const = {i.name: numpy_helper.to_array(i) for i in self.g.initializer}
        for node in self.g.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.const[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        inferred = onnx.shape_inference.infer_shapes(model)
        self.shape = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
                      for v in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]}
        self.removed: set[tuple] = set()  # _key of the nodes to drop
        self.added: list = []
        self.renames: dict[str, str] = {}
        self.counter = 0

    # -- reading ----------------------------------------------------------------------------------------------
    def consumers(self, tensor: str) -> list[tuple[object, int]]:
        return [(n, i) for n in self.g.node if _key(n) not in self.removed
                for i, name in enumerate(n.input) if name == tensor]

    def producer(self, tensor: str):
        return next((n for n in self.g.node if tensor in n.output and _key(n) not in self.removed), None)

    def is_graph_output(self, tensor: str) -> bool:
        return any(o.name == tensor for o in self.g.output)

    def _is_movement(self, node) -> bool:
        if node.op_type not in MOVEMENT:
            return False
        data = node.input[:] if node.op_type == "Concat" else node.input[:1]
        params = [name for name in node.input if name and name not in data]
        return all(name in self.const for name in params) and not any(name in self.const for name in data)

    def movement_regions(self) -> list[list]:
        """Connected groups of movement nodes (joined through the tensors between them), in graph order."""
        nodes = [n for n in self.g.node if self._is_movement(n)]
        made = {o: n for n in nodes for o in n.output}
        parent = {_key(n): _key(n) for n in nodes}

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x
        for n in nodes:
            for name in n.input:
                if name in made:
                    parent[find(_key(n))] = find(_key(made[name]))
        groups: dict[tuple, list] = defaultdict(list)
        for n in nodes:
            groups[find(_key(n))].append(n)
        return list(groups.values())

    def relabelling(self, region: list) -> dict[str, list[Label]] | None:
        """{exit tensor: its channels as (input, channel) labels}, or None when the region computes something."""
        inside = {o for n in region for o in n.output}
        roots = list(dict.fromkeys(name for n in region for name in
                                   (n.input if n.op_type == "Concat" else n.input[:1]) if name not in inside))
        values, bases = {}, []
        start = 0
        for root in roots:
            shape = self.shape.get(root)
            if shape is None or len(shape) != 4 or shape[0] != 1 or 0 in shape:
                return None
            size = int(np.prod(shape))
            values[root] = np.arange(start, start + size, dtype=np.int64).reshape(shape)
            bases.append((start, root, shape))
            start += size
        try:
            for n in region:
                outs = run_movement(n, [values.get(name) if name in values else self.const.get(name) for name in n.input])
                values.update(zip(n.output, outs))
        except (ValueError, IndexError, KeyError, TypeError):
            return None
        members = {_key(m) for m in region}
        exits = [o for n in region for o in n.output
                 if self.is_graph_output(o) or any(_key(c) not in members for c, _ in self.consumers(o))]
        if not exits:
            return None
        starts = np.array([b[0] for b in bases])
        labels = {}
        for name in exits:
            v = values[name]
            if v.ndim != 4 or v.shape[0] != 1:
                return None
            first = v[0, :, 0, 0]
            which = np.searchsorted(starts, first, side="right") - 1
            out = []
            for c, (f, w) in enumerate(zip(first, which)):
                base, root, shape = bases[w]
                hw = shape[2] * shape[3]
                if shape[2:] != v.shape[2:] or (f - base) % hw:
                    return None
                ch = int((f - base) // hw)
                if not np.array_equal(v[0, c].ravel(), f + np.arange(hw)):
                    return None
                out.append((root, ch))
            labels[name] = out
        return labels

    # -- fold (v2) --------------------------------------------------------------------------------------------
    def fold_plan(self, region: list, labels: dict) -> dict | None:
        """Readers and pieces, or None when some reader cannot absorb a permutation or an input cannot be cut."""
        members = {_key(n) for n in region}
        readers = []  # (conv node, exit tensor, depthwise?)
        for name, lab in labels.items():
            if self.is_graph_output(name) or len(set(lab)) != len(lab):
                return None
            for node, idx in self.consumers(name):
                if _key(node) in members:
                    continue
                kind = self._conv_kind(node, idx)
                if kind is None or (kind == "depthwise" and not self._dense_readers_after(node)):
                    return None
                readers.append((node, name, kind == "depthwise"))
        takes: dict[frozenset, list] = {}
        for _, name, _ in readers:
            takes.setdefault(frozenset(labels[name]), labels[name])
        owner: dict[Label, set] = defaultdict(set)
        for key in takes:
            for label in key:
                owner[label].add(key)
        pieces: dict[str, dict] = {}
        for root in dict.fromkeys(r for lab in labels.values() for r, _ in lab):
            channels = self.shape[root][1]
            groups: dict[frozenset, list[int]] = {}
            for ch in range(channels):
                groups.setdefault(frozenset(owner.get((root, ch), ())), []).append(ch)
            groups.pop(frozenset(), None)  # channels nobody reads are not computed
            if len(groups) > 1 or sum(map(len, groups.values())) < channels:
                if not self._cuttable(root, members):
                    return None
            pieces[root] = groups
        return {"readers": readers, "takes": takes, "pieces": pieces}

    def _conv_kind(self, node, idx: int) -> str | None:
        if node.op_type != "Conv" or idx != 0 or node.input[1] not in self.const:
            return None
        groups = attribute(node, "group", 1)
        weight = self.const[node.input[1]]
        if groups == 1:
            return "dense"
        if weight.shape[1] == 1 and weight.shape[0] == groups:
            return "depthwise"
        return None

    def _dense_readers_after(self, conv) -> bool:
        """The conv's output reaches only dense convs' inputs, through single-reader per-channel activations."""
        tensor = conv.output[0]
        while True:
            if self.is_graph_output(tensor):
                return False
            users = self.consumers(tensor)
            if len(users) == 1 and users[0][0].op_type in PER_CHANNEL and users[0][1] == 0:
                tensor = users[0][0].output[0]
                continue
            return bool(users) and all(self._conv_kind(n, i) == "dense" for n, i in users)

    def _chain(self, root: str) -> list | None:
        """[Conv, activation...] producing ROOT, each link read only by the next, or None."""
        chain, tensor = [], root
        while True:
            node = self.producer(tensor)
            if node is None:
                return None
            chain.insert(0, node)
            if node.op_type == "Conv":
                return chain if node.input[1] in self.const else None
            if node.op_type not in PER_CHANNEL or any(n not in self.const for n in node.input[1:] if n):
                return None
            tensor = node.input[0]
            if len(self.consumers(tensor)) != 1 or self.is_graph_output(tensor):
                return None

    def _cuttable(self, root: str, members: set) -> bool:
        return (self._chain(root) is not None and not self.is_graph_output(root)
                and all(_key(n) in members for n, _ in self.consumers(root)))

    def apply_fold(self, region: list, labels: dict, plan: dict) -> int:
        piece_tensor: dict[Label, tuple[str, int]] = {}  # label -> (piece tensor, channel within the piece)
        cut = 0
        for root, groups in plan["pieces"].items():
            whole = len(groups) == 1 and len(next(iter(groups.values()))) == self.shape[root][1]
            if whole:
                for ch in range(self.shape[root][1]):
                    piece_tensor[(root, ch)] = (root, ch)
                continue
            chain = self._chain(root)
            for channels in groups.values():
                name = self._cut(chain, channels)
                for i, ch in enumerate(channels):
                    piece_tensor[(root, ch)] = (name, i)
            self.removed.update(_key(n) for n in chain)
            cut += 1
        built: dict[frozenset, tuple[str, list[Label]]] = {}
        for key, lab in plan["takes"].items():
            order = list(dict.fromkeys(piece_tensor[label][0] for label in lab))  # pieces by first appearance
            channel_order = [label for piece in order for label in self._piece_labels(piece, piece_tensor, lab)]
            tensor = order[0] if len(order) == 1 else self._concat(order)
            built[key] = (tensor, channel_order)
        for node, name, depthwise in plan["readers"]:
            tensor, order = built[frozenset(labels[name])]
            position = {label: i for i, label in enumerate(order)}
            inv = np.argsort([position[label] for label in labels[name]])  # concat channel j = reader channel inv[j]
            self._retarget(node, name, tensor)
            if depthwise:
                self._permute_depthwise(node, inv)
            else:
                self._set_weight(node, self.const[node.input[1]][:, inv])
        self.removed.update(_key(n) for n in region)
        return cut

    def _piece_labels(self, piece: str, piece_tensor: dict, lab: list[Label]) -> list[Label]:
        mine = [label for label in lab if piece_tensor[label][0] == piece]
        return sorted(mine, key=lambda label: piece_tensor[label][1])

    def _cut(self, chain: list, channels: list[int]) -> str:
        """A copy of CHAIN computing only CHANNELS of its output; returns the new output's name."""
        conv, idx = chain[0], np.asarray(channels)
        weight = self._new_const(self.const[conv.input[1]][idx])
        inputs = [conv.input[0], weight]
        if len(conv.input) > 2 and conv.input[2]:
            inputs.append(self._new_const(self.const[conv.input[2]][idx]))
        tensor = self._new_node("Conv", inputs, conv.attribute)
        for act in chain[1:]:
            tensor = self._new_node(act.op_type, [tensor, *act.input[1:]], act.attribute)
        return tensor

    def _permute_depthwise(self, conv, inv: np.ndarray) -> None:
        self._set_weight(conv, self.const[conv.input[1]][inv])
        if len(conv.input) > 2 and conv.input[2]:
            conv.input[2] = self._new_const(self.const[conv.input[2]][inv])
        tensor = conv.output[0]
        while True:  # to the dense convs that read it, which take the permutation into their weights
            users = self.consumers(tensor)
            if len(users) == 1 and users[0][0].op_type in PER_CHANNEL:
                tensor = users[0][0].output[0]
                continue
            for node, _ in users:
                self._set_weight(node, self.const[node.input[1]][:, inv])
            return

    # -- exact (v1 and the rest) ------------------------------------------------------------------------------
    def apply_exact(self, region: list, labels: dict) -> None:
        for name, lab in labels.items():
            roots = list(dict.fromkeys(r for r, _ in lab))
            if len(roots) == 1 and len(lab) == self.shape[roots[0]][1] and \
                    sorted(ch for _, ch in lab) == list(range(len(lab))):
                root = roots[0]
                channels = [ch for _, ch in lab]
                if channels == list(range(len(lab))):
                    self._alias(name, root)
                else:
                    index = self._new_const(np.asarray(channels, dtype=np.int64))
                    self.added.append(self.onnx.helper.make_node("Gather", [root, index], [name], axis=1,
                                                                 name=f"sdeploy_shuffle_{self._next()}"))
                continue
            parts = []
            for root, ch in lab:  # runs of consecutive channels of one input
                if parts and parts[-1][0] == root and parts[-1][2] == ch:
                    parts[-1][2] = ch + 1
                else:
                    parts.append([root, ch, ch + 1])
            tensors = [root if (lo, hi) == (0, self.shape[root][1]) else self._slice(root, lo, hi)
                       for root, lo, hi in parts]
            if len(tensors) == 1:
                self._alias(name, tensors[0])
            else:
                self.added.append(self.onnx.helper.make_node("Concat", tensors, [name], axis=1,
                                                             name=f"sdeploy_concat_{self._next()}"))
        self.removed.update(_key(n) for n in region)

    def _alias(self, name: str, source: str) -> None:
        if self.is_graph_output(name):
            self.added.append(self.onnx.helper.make_node("Identity", [source], [name]))
        else:
            self.renames[name] = source

    def _slice(self, root: str, lo: int, hi: int) -> str:
        args = [self._new_const(np.asarray([v], dtype=np.int64)) for v in (lo, hi, 1)]
        return self._new_node("Slice", [root, *args])

    # -- building ---------------------------------------------------------------------------------------------
    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def _new_const(self, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = f"sdeploy_fold_c{self._next()}"
        self.g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        self.const[name] = array
        return name

    def _new_node(self, op: str, inputs: list[str], attributes=()) -> str:
        out = f"sdeploy_fold_t{self._next()}"
        node = self.onnx.helper.make_node(op, inputs, [out], name=f"sdeploy_fold_{op.lower()}_{self.counter}")
        node.attribute.extend(attributes)
        self.added.append(node)
        return out

    def _concat(self, tensors: list[str]) -> str:
        out = f"sdeploy_fold_t{self._next()}"
        self.added.append(self.onnx.helper.make_node("Concat", tensors, [out], axis=1,
                                                     name=f"sdeploy_fold_concat_{self.counter}"))
        return out

    def _set_weight(self, conv, weight: np.ndarray) -> None:
        conv.input[1] = self._new_const(weight)

    def _retarget(self, node, old: str, new: str) -> None:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new

    def finish(self) -> None:
        """Drop removed nodes and unused initializers, apply renames, and restore topological order."""
        nodes = [n for n in self.g.node if _key(n) not in self.removed] + self.added
        for node in nodes:
            for i, name in enumerate(node.input):
                while name in self.renames:
                    name = self.renames[name]
                node.input[i] = name
        made = {o: n for n in nodes for o in n.output}
        order, seen = [], set()

        def visit(node):
            if _key(node) in seen:
                return
            seen.add(_key(node))
            for name in node.input:
                if name in made:
                    visit(made[name])
            order.append(node)
        for node in nodes:
            visit(node)
        del self.g.node[:]
        self.g.node.extend(order)
        used = {name for n in order for name in n.input}
        keep = [i for i in self.g.initializer if i.name in used]
        del self.g.initializer[:]
        self.g.initializer.extend(keep)
        del self.g.value_info[:]


def _key(node) -> tuple:
    """A node's identity: its outputs (SSA names; protobuf wrapper objects are not stable across iterations)."""
    return tuple(node.output)
