"""What is inside a .tflite file, and what XNNPACK takes of it.

Op histogram from the interpreter's node list. XNNPACK delegation from the same interpreter after the default
delegate was applied: each `DELEGATE` node is one partition, and the original nodes it replaced are found by
walking back from its output tensors to its input tensors. This is the runtime's own decision, not a guess
from a support table, so it stays right when LiteRT's XNNPACK learns new ops.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path


def load_interpreter(path: Path, *, num_threads: int = 1, delegates: bool = True):
    """A LiteRT interpreter (ai-edge-litert), with or without the default XNNPACK delegate."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_path=str(path), num_threads=num_threads,
                              experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    return interpreter


@dataclass(frozen=True)
class XnnpackTake:
    """What the default XNNPACK delegate took of a graph: partitions (1 is the goal: each boundary costs a copy
    and a hand-off to LiteRT's own kernels) and the ops it left behind, by name."""

    partitions: int
    delegated_nodes: int
    not_delegated: dict[str, int]


@dataclass(frozen=True)
class TfliteFacts:
    """A .tflite file's op histogram and XNNPACK's take of it (the manifest's `ops`, `nodes`, `xnnpack`)."""

    ops: dict[str, int]
    nodes: int
    xnnpack: XnnpackTake

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TensorIO:
    """One input or output: name, shape, dtype and (scale, zero point) when quantized."""

    name: str
    shape: list[int]
    dtype: str
    quantization: dict[str, float] | None


@dataclass(frozen=True)
class ModelIO:
    inputs: list[TensorIO]
    outputs: list[TensorIO]

    def to_dict(self) -> dict:
        return asdict(self)


def inspect_tflite(path: Path) -> TfliteFacts:
    """The op histogram, from the interpreter's node list, and XNNPACK's partitions, from the same interpreter."""
    nodes = load_interpreter(path, delegates=True)._get_ops_details()
    original = [n for n in nodes if n["op_name"] != "DELEGATE"]
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    producer = {t: n["index"] for n in original for t in n["outputs"]}
    by_index = {n["index"]: n for n in original}
    delegated: set[int] = set()
    for delegate in delegates:
        boundary = set(int(t) for t in delegate["inputs"])
        stack = [int(t) for t in delegate["outputs"]]
        while stack:
            tensor = stack.pop()
            if tensor in boundary or tensor not in producer or producer[tensor] in delegated:
                continue
            node = producer[tensor]
            delegated.add(node)
            stack.extend(int(t) for t in by_index[node]["inputs"] if t >= 0)
    not_delegated = Counter(n["op_name"] for n in original if n["index"] not in delegated)
    return TfliteFacts(ops=dict(sorted(Counter(n["op_name"] for n in original).items())), nodes=len(original),
                       xnnpack=XnnpackTake(partitions=len(delegates), delegated_nodes=len(delegated),
                                           not_delegated=dict(sorted(not_delegated.items()))))


def io_details(path: Path) -> ModelIO:
    """Input/output names, shapes, dtypes and quantization (scale, zero point)."""
    interpreter = load_interpreter(path, delegates=False)

    def describe(detail) -> TensorIO:
        scale, zero_point = detail["quantization"]
        quant = {"scale": float(scale), "zero_point": int(zero_point)} if scale else None
        return TensorIO(name=detail["name"], shape=[int(s) for s in detail["shape"]],
                        dtype=detail["dtype"].__name__, quantization=quant)

    return ModelIO(inputs=[describe(d) for d in interpreter.get_input_details()],
                   outputs=[describe(d) for d in interpreter.get_output_details()])
