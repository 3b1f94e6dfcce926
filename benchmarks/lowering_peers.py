"""Peer converters for benchmarks/lowering.py, run inside their own venvs (see `make peers`).

    .venv-litert-torch/bin/python benchmarks/lowering_peers.py litert-torch SPEC.json
    .venv-ncnn/bin/python benchmarks/lowering_peers.py ncnn SPEC.json
    .venv-executorch/bin/python benchmarks/lowering_peers.py executorch SPEC.json
SPEC: {"model": zoo name or null, "checkpoint": path or null, "input_size": int, "outdir": dir,
       "calibration": .npy of NCHW float32 preprocessed images (litert-torch's and ExecuTorch's PT2E int8)}
Writes OUTDIR/result.json: {"files": {variant: path}, "errors": {variant: message}}.
The model is built with sdeploy's own loader (the repo is put on sys.path; it needs only torch, numpy, pillow).
"""
from __future__ import annotations

import json
import subprocess
import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def load(spec):
    from shufflenet_deploy.checkpoints import load_model

    return load_model(spec.get("model"), spec.get("checkpoint")).eval()


def litert_torch(spec, outdir: Path) -> dict:
    import numpy as np
    import torch
    import litert_torch

    model = load(spec)
    size = spec["input_size"]
    sample = (torch.zeros(1, 3, size, size),)
    files, errors = {}, {}
    try:
        path = outdir / "litert_torch_fp32.tflite"
        litert_torch.convert(model, sample).export(str(path))
        files["fp32"] = str(path)
    except Exception:
        errors["fp32"] = traceback.format_exc(limit=3)
    try:
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
        from litert_torch.quantize.quant_config import QuantConfig
        try:  # torch >= 2.10 moved PT2E to torchao
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        except ImportError:
            from torch.ao.quantization.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True,
                                                                                  is_dynamic=False))
        captured = torch.export.export(model, sample).module()
        prepared = prepare_pt2e(captured, quantizer)
        calib = np.load(spec["calibration"]).astype(np.float32)
        with torch.no_grad():
            for i in range(len(calib)):
                prepared(torch.from_numpy(calib[i : i + 1]))
        converted = convert_pt2e(prepared, fold_quantize=False)
        path = outdir / "litert_torch_int8.tflite"
        litert_torch.convert(converted, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(path))
        files["int8"] = str(path)
    except Exception:
        errors["int8"] = traceback.format_exc(limit=3)
    return {"files": files, "errors": errors}


def ncnn(spec, outdir: Path) -> dict:
    import torch

    model = load(spec)
    size = spec["input_size"]
    traced = torch.jit.trace(model, torch.zeros(1, 3, size, size))
    pt = outdir / "model.pt"
    traced.save(str(pt))
    pnnx = Path(sys.executable).parent / "pnnx"
    cmd = [str(pnnx) if pnnx.exists() else "pnnx", str(pt), f"inputshape=[1,3,{size},{size}]", "fp16=0"]
    proc = subprocess.run(cmd, cwd=outdir, capture_output=True, text=True, timeout=600)
    param = outdir / "model.ncnn.param"
    if proc.returncode != 0 or not param.exists():
        return {"files": {}, "errors": {"fp32": f"pnnx exit {proc.returncode}: {proc.stderr[-500:]}"}}
    return {"files": {"fp32": str(param)}, "errors": {}}


def executorch(spec, outdir: Path) -> dict:
    """ExecuTorch's documented XNNPACK path: torch.export -> to_edge_transform_and_lower(XnnpackPartitioner) ->
    .pte; int8 through PT2E with XNNPACKQuantizer's symmetric per-channel static config, calibrated on the same
    images as every other int8 row."""
    import numpy as np
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    model = load(spec)
    size = spec["input_size"]
    sample = (torch.zeros(1, 3, size, size),)
    files, errors = {}, {}

    def lower(module, name: str) -> str:
        program = to_edge_transform_and_lower(torch.export.export(module, sample),
                                              partitioner=[XnnpackPartitioner()]).to_executorch()
        path = outdir / name
        path.write_bytes(program.buffer)
        return str(path)

    try:
        files["fp32"] = lower(model, "executorch_fp32.pte")
    except Exception:
        errors["fp32"] = traceback.format_exc(limit=3)
    try:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                             get_symmetric_quantization_config)
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(torch.export.export(model, sample).module(), quantizer)
        calib = np.load(spec["calibration"]).astype(np.float32)
        with torch.no_grad():
            for i in range(len(calib)):
                prepared(torch.from_numpy(calib[i : i + 1]))
        files["int8"] = lower(convert_pt2e(prepared), "executorch_int8.pte")
    except Exception:
        errors["int8"] = traceback.format_exc(limit=3)
    return {"files": files, "errors": errors}


def main(kind: str, spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    outdir = Path(spec["outdir"])
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        result = {"litert-torch": litert_torch, "ncnn": ncnn, "executorch": executorch}[kind](spec, outdir)
    except Exception:
        result = {"files": {}, "errors": {"all": traceback.format_exc(limit=5)}}
    (outdir / "result.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
