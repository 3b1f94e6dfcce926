"""Issues 8 and 25: is sdeploy's lowered int8 ShuffleNet faster than every peer's? One run, one machine, interleaved.

    .venv/bin/python benchmarks/lowering.py [--threads 1,2] [--rounds 40] [--out results/lowering.json]

For each model (ShuffleNet v1 g3 1x and g8 1x and v2 1x at 224 px with fixed random weights and BN statistics,
calibrated on the digits images at 224; the bundled trained g3/g8 0.5x digits models at 64/80 px) it builds, once
(cached under --work; every toolchain converts the same weights):
  onnx2tf fp32/int8   `sdeploy export --no-optimize` (onnx2tf's plain output, our offline driver)
  onnx2tf CLI -oiqt int8   onnx2tf's own full-integer file (`onnx2tf -oiqt -cind`, same ONNX, same images)
  sdeploy fp32/int8   `sdeploy export` (lowered, shufflenet_deploy/export/lower.py)
  ort fp32 / ort int8 onnxruntime on the plain model.onnx; int8 = static QDQ (per-channel, MinMax, 7-bit weight
                      range: export/onnx_int8.py) calibrated on the same calibration images the exports used
  sdeploy onnx / onnx_int8   onnxruntime on sdeploy's lowered model.onnx and its `--onnx-int8` file: what
                      `sdeploy bench --runtime onnxruntime` times
  litert-torch fp32 / PT2E int8   in .venv-litert-torch (`make peers`), else skipped with the reason
  ncnn fp32           pnnx + ncnn in .venv-ncnn (`make peers`), else skipped with the reason
  executorch fp32 / PT2E int8   ExecuTorch 1.5 with the XNNPACK delegate in .venv-executorch (`make peers`), timed
                      by its own runtime in that venv, else skipped with the reason
Every variant runs in its own worker process (benchmarks/lowering_worker.py, under the venv that has its runtime);
the parent asks each worker in turn for a burst of invokes on the same preprocessed held-out image, round after
round, so all variants share the machine's state. Reported: median ms per invoke, ratios to onnx2tf's int8 and
fp32 from the same run, op count / TRANSPOSE count / XNNPACK partitions (TFLite), and each variant's logits vs
the original PyTorch model on that image (cosine) as a sanity check. The issue's targets are checked at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
WORKER = REPO / "benchmarks" / "lowering_worker.py"
PEERS = REPO / "benchmarks" / "lowering_peers.py"
MAIN_PY = Path(sys.executable)
LITERT_TORCH_PY = REPO / ".venv-litert-torch" / "bin" / "python"
NCNN_PY = REPO / ".venv-ncnn" / "bin" / "python"
EXECUTORCH_PY = REPO / ".venv-executorch" / "bin" / "python"


@dataclass
class Case:
    name: str
    model: str | None
    checkpoint: Path | None
    size: int


@dataclass
class Variant:
    name: str
    kind: str  # tflite | onnxruntime | ncnn | executorch
    path: str
    python: Path = MAIN_PY
    info: dict = field(default_factory=dict)


def cases(args) -> list[Case]:
    out = [Case("v1_g3_1.0x@224", "shufflenet_v1_g3_1.0x", None, 224),
           Case("v1_g8_1.0x@224", "shufflenet_v1_g8_1.0x", None, 224),
           Case("v2_1.0x@224", "shufflenet_v2_1.0x", None, 224)]
    for g, size in (("g3", 64), ("g8", 80)):
        ckpt = REPO / "models" / f"shufflenet_v1_{g}_0.5x_digits{size}.pt"
        if ckpt.exists():
            out.append(Case(f"v1_{g}_0.5x_digits@{size} (trained)", None, ckpt, size))
        else:
            print(f"skip bundled {g}: {ckpt} missing (run `make models`)")
    return [c for c in out if not args.only or any(o in c.name for o in args.only)]


# -- building -------------------------------------------------------------------------------------------------
def build(case: Case, work: Path, log, *, ablation: bool = False,
          newer_litert: str | None = None) -> tuple[list[Variant], dict, np.ndarray, np.ndarray]:
    from shufflenet_deploy.data.digits import ensure_digits
    from shufflenet_deploy.errors import UserError
    from shufflenet_deploy.export import pipeline, verify
    from shufflenet_deploy.export.images import load_images
    from shufflenet_deploy.export.sources import open_source

    work.mkdir(parents=True, exist_ok=True)
    calib = None if case.checkpoint else ensure_digits(case.size) / "calib"
    if case.checkpoint is None:  # one fixed set of weights for every toolchain (a zoo model is random per load)
        case.checkpoint = _seeded_checkpoint(case, work)
    manifests, skipped = {}, {}
    plain_failed = work / "plain-export-failed.txt"  # v2: onnx2tf cannot convert its plain graph at all
    for label, optimize in (("plain", False), ("sdeploy", True)):
        outdir = work / label
        if not optimize and plain_failed.exists():
            continue
        if not (outdir / "manifest.json").exists():
            log(f"  exporting {label} ({'lowered' if optimize else 'onnx2tf plain'})")
            req = pipeline.ExportRequest(model=case.model, checkpoint=case.checkpoint, input_size=case.size,
                                         precisions=("fp32", "int8"), calib=calib, outdir=outdir, force=True,
                                         optimize=optimize)
            try:
                pipeline.export(req)
            except UserError as err:
                if optimize:
                    raise
                plain_failed.write_text(err.message)
                continue
        manifests[label] = json.loads((outdir / "manifest.json").read_text())
    if plain_failed.exists():
        for name in ("onnx2tf fp32", "onnx2tf int8", "onnx2tf CLI -oiqt int8"):
            skipped[name] = f"no plain onnx2tf export: {plain_failed.read_text()}"

    # the exports' own calibration and held-out images (same seed -> same split)
    req = pipeline.ExportRequest(model=case.model, checkpoint=case.checkpoint, input_size=case.size, calib=calib)
    source = open_source(req.model, req.checkpoint, input_size=req.input_size)
    model, meta = source.module, source.meta
    pre = meta.preprocessing
    images = load_images(req.calib, meta, pre, ["onnx", "fp32", "int8"], verify_count=req.verify_count,
                         calib_count=req.calib_count, seed=req.seed)
    x = images.held_out[:1].astype(np.float32)
    np.save(work / "input.npy", x)
    np.save(work / "calibration.npy", images.calibration.astype(np.float32))
    torch_logits = verify.run_torch(model, x)

    plain = "plain" in manifests
    plain_onnx = work / "plain" / "model.onnx"
    if not plain:  # the unlowered graph all the same, for ONNX Runtime's rows (what a user of ORT would run)
        from shufflenet_deploy.export.onnx_export import export_onnx

        plain_onnx = work / "plain-onnx" / "model.onnx"
        plain_onnx.parent.mkdir(exist_ok=True)
        export_onnx(model, case.size, plain_onnx)
    variants = [*([Variant("onnx2tf fp32", "tflite", str(work / "plain" / "model_fp32.tflite")),
                   Variant("onnx2tf int8", "tflite", str(work / "plain" / "model_int8.tflite"))] if plain else []),
                Variant("sdeploy fp32", "tflite", str(work / "sdeploy" / "model_fp32.tflite")),
                Variant("sdeploy int8", "tflite", str(work / "sdeploy" / "model_int8.tflite")),
                Variant("ort fp32", "onnxruntime", str(plain_onnx))]
    cli_int8 = _onnx2tf_cli_int8(work, images.calibration, pre, log) if plain else None
    if cli_int8:
        variants.insert(2, Variant("onnx2tf CLI -oiqt int8", "tflite", str(cli_int8)))
    elif plain:
        skipped["onnx2tf CLI -oiqt int8"] = f"onnx2tf's CLI failed, see {work / 'onnx2tf-cli.log'}"
    from shufflenet_deploy.export.onnx_int8 import quantize as ort_quantize

    sdeploy_onnx = work / "sdeploy" / "model.onnx"
    ort_rows = [("ort int8 (QDQ)", plain_onnx, work / "ort_int8_qdq_rr.onnx"),  # (row, float source, its file)
                ("sdeploy onnx (ort)", None, sdeploy_onnx),
                ("sdeploy onnx_int8 (ort)", sdeploy_onnx, work / "sdeploy_onnx_int8.onnx")]
    for label, source, path in ort_rows:
        if source is not None and not path.exists():
            log(f"  quantizing {source.parent.name}/model.onnx for onnxruntime (static QDQ, export/onnx_int8.py)")
            ort_quantize(source, path, images.calibration)
        variants.append(Variant(label, "onnxruntime", str(path)))

    spec = {"model": case.model, "checkpoint": str(case.checkpoint) if case.checkpoint else None,
            "input_size": case.size, "calibration": str(work / "calibration.npy")}
    litert_torch_names = {"fp32": "litert-torch fp32", "int8": "litert-torch int8 (PT2E)"}
    for peer, py, names in (("litert-torch", LITERT_TORCH_PY, litert_torch_names),
                            ("ncnn", NCNN_PY, {"fp32": "ncnn fp32"}),
                            ("executorch", EXECUTORCH_PY,
                             {"fp32": "executorch fp32", "int8": "executorch int8 (PT2E)"})):
        if not py.exists():
            reason = REPO / ".cache" / "peer-venvs" / f".venv-{peer}.failed.txt"
            why = reason.read_text().strip()[-300:] if reason.exists() else "venv missing: run `make peers`"
            for n in names.values():
                skipped[n] = f"{peer}: {why}"
            continue
        outdir = work / peer
        if not (outdir / "result.json").exists():
            log(f"  converting with {peer}")
            spec_path = work / f"{peer}.json"
            spec_path.write_text(json.dumps({**spec, "outdir": str(outdir)}))
            subprocess.run([str(py), str(PEERS), peer, str(spec_path)], timeout=1800, cwd=work,
                           stdout=open(work / f"{peer}.log", "w"), stderr=subprocess.STDOUT)
        result = json.loads((outdir / "result.json").read_text()) if (outdir / "result.json").exists() else {
            "files": {}, "errors": {"all": f"converter crashed, see {work / (peer + '.log')}"}}
        for prec, n in names.items():
            if prec in result["files"]:
                kind = {"ncnn": "ncnn", "executorch": "executorch"}.get(peer, "tflite")
                variants.append(Variant(n, kind, result["files"][prec], python=MAIN_PY if kind == "tflite" else py))
            else:
                err = result["errors"].get(prec) or result["errors"].get("all", "no output")
                skipped[n] = f"{peer} conversion failed: {err.strip().splitlines()[-1][:300]}"

    if ablation and plain:  # the TFLite passes alone on onnx2tf's plain graph, one row per shuffle form
        from shufflenet_deploy.export.lower import SHUFFLE_MODES, lower_tflite

        for prec in ("fp32", "int8"):
            for mode in SHUFFLE_MODES:
                dst = work / f"plain_passes_{prec}_{mode}.tflite"
                lower_tflite(work / "plain" / f"model_{prec}.tflite", dst, shuffle=mode)
                variants.append(Variant(f"onnx2tf+passes {prec} {mode}", "tflite", str(dst)))
    if newer_litert:  # the same .tflite files under the litert-torch venv's newer LiteRT
        for v in [v for v in variants if v.kind == "tflite" and v.python == MAIN_PY and "passes" not in v.name]:
            variants.append(Variant(f"{v.name} [{newer_litert}]", "tflite", v.path, python=LITERT_TORCH_PY))

    from shufflenet_deploy.export.tflite_inspect import inspect_tflite

    for v in variants:
        if v.kind == "tflite":
            try:
                ins = inspect_tflite(Path(v.path)).to_dict()
                v.info.update(ops=ins["nodes"], transposes=ins["ops"].get("TRANSPOSE", 0),
                              partitions=ins["xnnpack"]["partitions"],
                              not_delegated=ins["xnnpack"]["not_delegated"],
                              depthwise=ins["ops"].get("DEPTHWISE_CONV_2D", 0))
            except Exception as e:  # e.g. newer op versions than this LiteRT knows
                v.info["inspect_error"] = str(e)[:200]
    extra = {"skipped": skipped, "manifests": {k: _manifest_summary(m) for k, m in manifests.items()}}
    return variants, extra, x, torch_logits


def _onnx2tf_cli_int8(work: Path, calibration: np.ndarray, pre, log) -> Path | None:
    """onnx2tf's own full-integer model, made the documented way (`onnx2tf -oiqt -cind`) from the same ONNX and
    the same calibration images: the "onnx2tf int8" row is our offline driver on onnx2tf's graph (TF's converter,
    per-channel); this row shows what a user of onnx2tf's CLI gets. Cached in WORK/onnx2tf-cli/."""
    from shufflenet_deploy.export.tflite_convert import write_onnx2tf_sample

    folder = work / "onnx2tf-cli"
    target = folder / "out" / "model_full_integer_quant.tflite"
    if target.exists():
        return target
    folder.mkdir(exist_ok=True)
    (folder / "model.onnx").write_bytes((work / "plain" / "model.onnx").read_bytes())
    mean, std = np.asarray(pre.mean, np.float32), np.asarray(pre.std, np.float32)
    pixels = calibration.transpose(0, 2, 3, 1) * std + mean  # back to NHWC 0..1: onnx2tf normalises itself
    np.save(folder / "calib.npy", pixels.astype(np.float32))
    write_onnx2tf_sample(folder, pixels.astype(np.float32))  # onnx2tf would download its sample file otherwise
    log("  onnx2tf CLI -oiqt (its own int8, ~2 min)")
    cmd = [str(MAIN_PY.parent / "onnx2tf"), "-i", "model.onnx", "-o", "out", "-oiqt", "-cind", "input", "calib.npy",
           json.dumps([[[[float(v) for v in mean]]]]), json.dumps([[[[float(v) for v in std]]]])]
    with open(work / "onnx2tf-cli.log", "w") as out:
        subprocess.run(cmd, cwd=folder, stdout=out, stderr=subprocess.STDOUT, timeout=3600)
    return target if target.exists() else None


def _seeded_checkpoint(case: Case, work: Path) -> Path:
    """The zoo model with seed-0 weights and randomized BN statistics (so logits depend on the input and the
    'cos vs torch' column means something), saved once as our checkpoint format."""
    import torch

    from shufflenet_deploy.checkpoints import load_model, make_meta, save_checkpoint
    from shufflenet_deploy.zoo.layers import randomize_batchnorm

    path = work / "weights.pt"
    if path.exists():
        return path
    torch.manual_seed(0)
    model = randomize_batchnorm(load_model(case.model), seed=0)
    return save_checkpoint(path, model, make_meta(case.model).with_input_size(case.size))


def _manifest_summary(m: dict) -> dict:
    out = {"lowering": m.get("lowering"), "parity": {k: a["parity"] for k, a in m["artifacts"].items()}}
    if "accuracy" in m:  # its data folder lives in this machine's cache: name it relative to $SDEPLOY_CACHE
        from shufflenet_deploy.paths import cache_root

        data = str(m["accuracy"].get("data", ""))
        root = str(cache_root())
        out["accuracy"] = {**m["accuracy"], "data": "$SDEPLOY_CACHE" + data[len(root):] if data.startswith(root)
                           else data}
    return out


# -- timing ---------------------------------------------------------------------------------------------------
class Worker:
    def __init__(self, v: Variant, threads: int, input_path: Path):
        self.v = v
        self.error = None
        self.proc = subprocess.Popen([str(v.python), str(WORKER), v.kind, v.path, str(threads), str(input_path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        line = self.proc.stdout.readline().strip()
        if line != "ready":  # e.g. an op version this runtime does not know
            self.error = (self.proc.stderr.read() or line).strip().splitlines()[-1:] or ["worker died"]
            self.proc.wait()
            self.proc = None

    def ask(self, cmd: str) -> str:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self):
        if self.proc:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)


def measure(variants: list[Variant], threads: int, x_path: Path, torch_logits: np.ndarray, rounds: int, burst: int,
            work: Path) -> dict:
    workers = [Worker(v, threads, x_path) for v in variants]
    results = {}
    live = [w for w in workers if w.proc]
    for w in workers:
        if not w.proc:
            results[w.v.name] = {"error": " ".join(w.error)}
    # sanity: logits vs the original PyTorch model on the same image
    for w in live:
        out = work / f"out_{abs(hash(w.v.name))}.npy"
        w.ask(f"dump {out}")
        y = np.load(out).reshape(1, -1).astype(np.float64)
        ref = torch_logits.reshape(1, -1).astype(np.float64)
        cos = float((y * ref).sum() / max(np.linalg.norm(y) * np.linalg.norm(ref), 1e-30))
        results[w.v.name] = {"cosine_vs_torch": cos, "top1_same": bool(y.argmax() == ref.argmax()), "samples_ms": []}
    bursts = {}
    for w in live:  # each turn lasts >= ~10 ms, so per-call overhead stays small on tiny models
        est = float(w.ask("run 3").split()[1])
        bursts[w] = int(min(200, max(burst, np.ceil(0.010 / max(est, 1e-6)))))
    for r in range(rounds + 2):
        order = live if r % 2 == 0 else live[::-1]  # alternate direction: no variant always follows the same one
        for w in order:
            sec = float(w.ask(f"run {bursts[w]}").split()[1])
            if r >= 2:  # two warm-up rounds
                results[w.v.name]["samples_ms"].append(sec * 1000)
    for w in workers:
        w.close()
    for name, res in results.items():
        if "samples_ms" in res:
            s = np.asarray(res["samples_ms"])
            res.update(median_ms=float(np.median(s)), p25_ms=float(np.percentile(s, 25)),
                       p75_ms=float(np.percentile(s, 75)))
    return results


def op_profile(path: Path, threads: int = 1, reps: int = 50) -> dict:
    """Per-op time: each op cut out into its own one-op model (its constants kept), timed under XNNPACK.

    A zero PAD that XNNPACK folds into the next conv (tflite/ops.py `fused_into`) is counted 0 and listed as
    "PAD (folded into conv)": alone it is slow, in the graph free (benchmarks/results/pad_fusion.txt). Other
    cross-op effects are invisible here; the profile says which op types the time goes to."""
    from collections import defaultdict

    from shufflenet_deploy.export import tflite_rewrite as tr
    from shufflenet_deploy.export.tflite_inspect import load_interpreter

    from shufflenet_deploy.tflite.ops import model_ops

    folded = {o.index for o in model_ops(path) if o.fused_into is not None}
    n = len(tr.Graph.load(path).sg.operators)
    total, count = defaultdict(float), defaultdict(int)
    tmp = path.with_name(path.stem + "_op.tflite")
    for i in range(n):
        g = tr.Graph.load(path)
        op = g.sg.operators[i]
        name = g.name(op)
        if i in folded:
            total[f"{name} (folded into conv)"] += 0.0
            count[f"{name} (folded into conv)"] += 1
            continue
        g.sg.operators = [op]
        g.sg.inputs = np.array([int(t) for t in op.inputs if t >= 0 and g.const(int(t)) is None], np.int32)
        g.sg.outputs = np.array([int(t) for t in op.outputs], np.int32)
        g.model.signatureDefs = []
        g.save(tmp)
        it = load_interpreter(tmp, num_threads=threads)
        it.invoke()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(reps):
                it.invoke()
            times.append((time.perf_counter() - t0) / reps)
        total[name] += float(np.median(times)) * 1000
        count[name] += 1
    tmp.unlink(missing_ok=True)
    return {k: {"ops": count[k], "ms": round(total[k], 4)} for k in sorted(total, key=lambda k: -total[k])}


# -- report ---------------------------------------------------------------------------------------------------
def table(case: Case, variants: list[Variant], res: dict, threads: int, skipped: dict) -> list[str]:
    lines = [f"\n## {case.name}, {threads} thread{'s' if threads > 1 else ''} (ratios: to onnx2tf's output on the "
             "same runtime as the row, and to sdeploy's int8 file)",
             f"{'variant':40s} {'median ms':>9s} {'IQR ms':>13s} {'/onnx2tf int8':>13s} {'/onnx2tf fp32':>13s} "
             f"{'/sdeploy int8':>13s} "
             f"{'ops':>4s} {'transp':>6s} {'dwconv':>6s} {'XNN parts':>9s} {'cos vs torch':>12s}"]
    for v in variants:
        r = res.get(v.name, {})
        suffix = v.name[v.name.index(" ["):] if v.name.endswith("]") else ""
        base8 = res.get(f"onnx2tf int8{suffix}", {}).get("median_ms")
        base32 = res.get(f"onnx2tf fp32{suffix}", {}).get("median_ms")
        ours = res.get("sdeploy int8", {}).get("median_ms")
        if "median_ms" not in r:
            lines.append(f"{v.name:40s} failed to run: {r.get('error', '?')[:120]}")
            continue
        i = v.info
        lines.append(f"{v.name:40s} {r['median_ms']:9.3f} {r['p25_ms']:6.3f}-{r['p75_ms']:6.3f} "
                     f"{r['median_ms'] / base8 if base8 else float('nan'):13.2f} "
                     f"{r['median_ms'] / base32 if base32 else float('nan'):13.2f} "
                     f"{r['median_ms'] / ours if ours else float('nan'):13.2f} "
                     f"{str(i.get('ops', '-')):>4s} {str(i.get('transposes', '-')):>6s} "
                     f"{str(i.get('depthwise', '-')):>6s} "
                     f"{str(i.get('partitions', '-')):>9s} {r['cosine_vs_torch']:12.5f}")
    for name, why in skipped.items():
        lines.append(f"{name:40s} skipped: {why}")
    return lines


def targets(res: dict, suffix: str = "") -> dict:
    """The issue's targets as booleans (None when a side is missing); suffix picks the LiteRT runtime's rows."""
    m = {k[: len(k) - len(suffix)] if suffix and k.endswith(suffix) else (k if not suffix or "[" not in k else None):
         v.get("median_ms") for k, v in res.items()}
    if suffix:  # non-TFLite peers (onnxruntime, ncnn) have no runtime suffix: keep them
        m.update({k: v.get("median_ms") for k, v in res.items() if k.startswith(("ort ", "ncnn ", "executorch ",
                                                                                 "sdeploy onnx"))})
    m.pop(None, None)
    s8, s32 = m.get("sdeploy int8"), m.get("sdeploy fp32")

    def le(a, b, f=1.0):
        return None if a is None or b is None else {"ratio": round(a / b, 3), "limit": f, "met": a <= f * b}

    out = {"sdeploy int8 <= 0.6x onnx2tf int8": le(s8, m.get("onnx2tf int8"), 0.6),
           "sdeploy int8 <= 0.6x onnx2tf CLI -oiqt int8": le(s8, m.get("onnx2tf CLI -oiqt int8"), 0.6),
           "sdeploy int8 <= 0.9x litert-torch int8": le(s8, m.get("litert-torch int8 (PT2E)"), 0.9),
           "sdeploy fp32 <= 0.8x onnx2tf fp32": le(s32, m.get("onnx2tf fp32"), 0.8),
           "sdeploy int8 < sdeploy fp32": le(s8, s32, 1.0),
           "sdeploy int8 < executorch int8 (PT2E)": le(s8, m.get("executorch int8 (PT2E)"), 1.0),
           # issue 25: the best TFLite file sdeploy writes against ONNX Runtime's fp32 (<= 1.05; stretch <= 1.00)
           "best sdeploy TFLite <= 1.05x ort fp32": le(min(s8, s32) if s8 and s32 else None, m.get("ort fp32"), 1.05)}
    for peer in ("ort fp32", "ncnn fp32", "onnx2tf fp32", "litert-torch fp32", "executorch fp32"):
        out[f"sdeploy int8 < {peer}"] = le(s8, m.get(peer), 1.0)
    return out


def _version_in(py: Path, package: str) -> str:
    """PACKAGE's version in the venv whose interpreter is PY ("?" when it cannot say)."""
    got = subprocess.run([str(py), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
                         capture_output=True, text=True).stdout.strip()
    return got or "?"


def _peer_versions() -> str:
    """The peer toolchains' versions, read in their own venvs (`make peers`)."""
    return "".join(f", {package} {_version_in(py, package)}" for py, package in (
        (LITERT_TORCH_PY, "litert-torch"), (NCNN_PY, "ncnn"), (EXECUTORCH_PY, "executorch")) if py.exists())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--burst", type=int, default=5, help="min invokes per worker turn (more for fast models)")
    p.add_argument("--work", type=Path, default=REPO / ".cache" / "lowering-bench")
    p.add_argument("--only", nargs="*", help="substrings of case names to run")
    p.add_argument("--out", type=Path, help="write the results as JSON")
    p.add_argument("--profile", action="store_true", help="per-op-type times of onnx2tf/sdeploy TFLite (1 thread)")
    args = p.parse_args(argv)
    log = lambda msg: print(msg, flush=True)  # noqa: E731

    command = "$ " + " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/lowering.py", *sys.argv[1:]])
    from importlib.metadata import version

    from shufflenet_deploy.devices.cpuinfo import parse_cpuinfo, summary

    cpu = summary(parse_cpuinfo(Path("/proc/cpuinfo").read_text()).to_dict())
    log(command)
    log(f"# host {cpu} ({platform.machine()}, {os.cpu_count()} cpus); load before: {os.getloadavg()[0]:.2f}; "
        f"LiteRT (ai-edge-litert) {version('ai-edge-litert')}, onnxruntime {version('onnxruntime')}, "
        f"onnx2tf {version('onnx2tf')}{_peer_versions()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    report = {"command": command, "host": {"cpu": cpu, "machine": platform.machine(), "cpus": os.cpu_count()},
              "cases": {}}
    threads_list = [int(t) for t in args.threads.split(",")]
    newer = f"LiteRT {_version_in(LITERT_TORCH_PY, 'ai-edge-litert')}" if LITERT_TORCH_PY.exists() else None
    for i, case in enumerate(cases(args)):
        log(f"\n# building {case.name}")
        work = args.work / case.name.split(" ")[0].replace("@", "_")
        try:
            variants, extra, x, torch_logits = build(case, work, log, ablation=i == 0, newer_litert=newer)
        except Exception as e:  # e.g. onnx2tf cannot convert this model at all (plain or lowered)
            log(f"  SKIPPED {case.name}: {type(e).__name__}: {e}")
            report["cases"][case.name] = {"skipped": f"{type(e).__name__}: {e}"}
            continue
        entry = {"variants": {v.name: {"kind": v.kind, "path": os.path.relpath(v.path, REPO), **v.info}
                              for v in variants}, **extra,
                 "timings": {}, "targets": {}}
        for threads in threads_list:
            load = os.getloadavg()[0]
            res = measure(variants, threads, work / "input.npy", torch_logits, args.rounds, args.burst, work)
            entry["timings"][threads] = res
            entry["targets"][threads] = {"LiteRT " + version("ai-edge-litert"): targets(res)}
            if newer:
                entry["targets"][threads][newer] = targets(res, f" [{newer}]")
            for line in table(case, variants, res, threads, extra["skipped"]):
                log(line)
            log(f"(load average before this table: {load:.2f})")
            for runtime, tg in entry["targets"][threads].items():
                log(f"  targets, TFLite rows on {runtime}:")
                for name, t in tg.items():
                    if t is not None:
                        log(f"    {name:42s} ratio {t['ratio']:.2f} -> {'MET' if t['met'] else 'missed'}")
        acc = [(label, extra["manifests"][key].get("accuracy")) for key, label in (("sdeploy", "sdeploy"),
                                                                                   ("plain", "onnx2tf"))
               if key in extra["manifests"]]  # v2 has no plain onnx2tf export
        if acc[0][1]:
            for label, a in acc:
                log(f"  accuracy ({label} export, {a['samples']} val images): " + ", ".join(
                    f"{r['artifact']} top-1 {r['top1']:.2%}" + (f" (agrees w/ pytorch {r['top1_agreement']:.1%})"
                                                              if r.get("top1_agreement") is not None else "")
                    for r in a["rows"]))
        if args.profile:
            entry["op_profile"] = {}
            for name in ("onnx2tf fp32", "sdeploy fp32", "onnx2tf int8", "sdeploy int8"):
                v = next(v for v in variants if v.name == name)
                prof = op_profile(Path(v.path))
                entry["op_profile"][name] = prof
                log(f"  per-op ({name}, each op alone, 1 thread): total {sum(p['ms'] for p in prof.values()):.2f} ms = "
                    + ", ".join(f"{k} x{p['ops']} {p['ms']:.2f}" for k, p in prof.items()))
        report["cases"][case.name] = entry
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, default=str))
        log(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
