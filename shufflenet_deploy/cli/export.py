"""`sdeploy export MODEL`: checkpoint -> ONNX -> TFLite, verified."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import comma_list, input_size as parse_size, print_json, status, stdout

if TYPE_CHECKING:
    from ..manifest import Manifest


@click.command()
@click.argument("model", required=False)
@click.option("--checkpoint", type=click.Path(path_type=Path),
              help="Weights: our checkpoint, Megvii's official v1, a state_dict (its shapes name the zoo entry), or "
                   "the state_dict of --module's model (loaded with weights_only=True).")
@click.option("--module", "module", metavar="FILE.py:FACTORY",
              help="Build the model with your own code: FACTORY() in FILE.py returns the nn.Module. This RUNS that "
                   "file, as `python FILE.py` would: pass only code you trust.")
@click.option("--input-size", help="Input side, or height,width (e.g. 480,640); default: the graph's or checkpoint's, "
                                   "else 224.")
@click.option("--mean", help="Per-channel mean after scaling, e.g. 0.485,0.456,0.406 (default: ImageNet's).")
@click.option("--std", help="Per-channel std after scaling, e.g. 0.229,0.224,0.225 (default: ImageNet's).")
@click.option("--scale", help="Multiplier from 0..255 pixels, e.g. 1/255 (default) or 1 for 0..255 models.")
@click.option("--channel-order", type=click.Choice(["RGB", "BGR"], case_sensitive=False),
              help="Colour order the model expects (default RGB).")
@click.option("--precision", default="fp32,int8", show_default=True, help="Comma list of fp32, fp16, int8.")
@click.option("--calib", type=click.Path(path_type=Path), help="Folder (or ImageFolder tree) of calibration images.")
@click.option("--calib-count", default=100, show_default=True, help="Images used for int8 calibration.")
@click.option("--val", type=click.Path(path_type=Path), help="Labelled ImageFolder for accuracy in the manifest.")
@click.option("--shuffle", type=click.Choice(["paper", "megvii"]), help="Channel-shuffle convention (ShuffleNet v1).")
@click.option("-o", "--outdir", type=click.Path(path_type=Path), help="Output folder (default: export-MODEL).")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="Lower the graph for XNNPACK (depthwise, shuffle, pools); --no-optimize keeps onnx2tf's output.")
@click.option("--int8-target", default="auto", show_default=True, metavar="agreement=PCT,drop=PT|none",
              help="Repair int8 until top-1 agreement with fp32 >= PCT and (with labels) top-1 drop <= PT: more "
                   "calibration, other activation ranges, the worst layers in float. auto: agreement=99,drop=0.5 "
                   "for a checkpoint, none for random weights; none: one plain attempt.")
@click.option("--onnx-int8", is_flag=True,
              help="Also write model_int8.onnx for ONNX Runtime (static QDQ, calibrated and judged like the int8 "
                   "TFLite file); `sdeploy bench --runtime onnxruntime` times it. Needs int8 in --precision.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def export(model, checkpoint, module, input_size, mean, std, scale, channel_order, precision, calib, calib_count, val,
           shuffle, outdir, force, optimize, int8_target, onnx_int8, as_json):
    """Export MODEL to ONNX and TFLite, verifying each step.

    MODEL is a zoo name (`sdeploy zoo`), or your own model as a file: model.onnx, model.pt2 (torch.export.save)
    or TorchScript (torch.jit.save). Or build it with --module net.py:factory (+ --checkpoint weights).
    """
    from ..extras import require

    require("export", "sdeploy export")
    from ..export.pipeline import ExportRequest, export as run_export
    from ..errors import UserError

    if model is None and checkpoint is None and module is None:
        raise UserError("nothing to export", "name a zoo model (see `sdeploy zoo`), a model file (.onnx, .pt2, "
                        "TorchScript), --module net.py:factory, or --checkpoint")
    options = {"shuffle": shuffle} if shuffle else {}
    named_by = model or (module.rpartition(":")[0] if module else str(checkpoint))
    name = Path(named_by).stem
    preprocessing = {"mean": _floats(mean, "--mean"), "std": _floats(std, "--std"), "scale": _scale(scale),
                     "channel_order": channel_order.upper() if channel_order else None}
    request = ExportRequest(model=model, checkpoint=checkpoint, module=module, preprocessing=preprocessing,
                            input_size=parse_size(input_size),
                            precisions=tuple(comma_list(precision)), calib=calib, calib_count=calib_count, val=val,
                            outdir=outdir or Path(f"export-{name}"), force=force, model_options=options,
                            optimize=optimize, int8_target=int8_target, onnx_int8=onnx_int8)
    with status("exporting") as update:
        manifest = run_export(request, progress=update)
    if as_json:
        print_json(manifest.data)
    else:
        print_summary(manifest, request.outdir)


def _floats(text: str | None, flag: str) -> tuple[float, ...] | None:
    from ..errors import UserError

    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"{flag} {text!r} is not a comma list of numbers", f"e.g. {flag} 0.485,0.456,0.406") from None
    return values


def _scale(text: str | None) -> float | None:
    from ..errors import UserError

    if text is None:
        return None
    try:
        num, _, den = text.partition("/")
        value = float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        raise UserError(f"--scale {text!r} is not a number", "e.g. --scale 1/255 or --scale 1") from None
    return value


def print_summary(written: "Manifest", outdir: Path) -> None:
    from rich.table import Table

    from ..sizes import size_str

    manifest = written.data
    table = Table(title=f"{manifest['model']} @ {size_str(manifest['input_size'])}px -> {outdir}")
    for col in ("artifact", "size", "ops", "XNNPACK partitions", "vs", "max abs", "cosine", "top-1 agree"):
        table.add_column(col, justify="right" if col not in ("artifact", "vs") else "left", no_wrap=col == "artifact")
    for name, art in manifest["artifacts"].items():
        parity = art["parity"]
        xnn = art.get("xnnpack", {})
        table.add_row(name, f"{art['size_bytes'] / 1e6:.2f} MB", str(art.get("nodes", sum(art["ops"].values()))),
                      str(xnn.get("partitions", "-")), parity["reference"], f"{parity['max_abs']:.2e}",
                      f"{parity['cosine']:.5f}", f"{parity['top1_agreement']:.1%}")
    stdout.print(table)
    images = manifest["images"]
    stdout.print(f"MACs {manifest['macs']['total'] / 1e6:.1f} M, images: {images['source']} "
                 f"({images['calibration']} calibration, {images['held_out']} held out), "
                 f"{manifest['timings']['total_s']:.0f} s. Manifest: {outdir / 'manifest.json'}")
    if "accuracy" in manifest:
        acc = manifest["accuracy"]
        stdout.print("accuracy (" + acc["data"] + "): " + ", ".join(
            f"{r['artifact']} {r['top1']:.2%}" for r in acc["rows"]))
    print_int8(written)
    onnx_int8 = manifest.get("onnx_int8") or {}
    if onnx_int8 and not onnx_int8.get("shipped"):
        stdout.print(f"model_int8.onnx not shipped: {onnx_int8.get('why')}", highlight=False)


def print_int8(written: "Manifest", worst_count: int = 3) -> None:
    """The int8 repair's attempts (if any) and the worst layers of the shipped int8 file."""
    from ..export.int8_layers import summary_line, worst

    repair = written.int8_repair
    for attempt in repair.attempts if repair else ():
        check = attempt.check
        drop = f", top-1 drop {100 * check.drop:.2f} pt" if check.drop is not None else ""
        floats = f", {len(attempt.float_layers)} layer(s) in float" if attempt.float_layers else ""
        stdout.print(f"int8 {attempt.step}: agreement {100 * check.agreement:.2f}%{drop}{floats}, target "
                     f"{attempt.decision} at {check.images} images, {attempt.latency_ms:.3f} ms here, "
                     f"{attempt.xnnpack_partitions} XNNPACK partition(s)"
                     f"{' <- applied' if attempt.step == repair.applied else ''}", highlight=False)
    applied = repair.applied_attempt if repair else None
    for verdict in applied.verdicts if applied else ():
        if verdict.state == "undecided":
            stdout.print(f"int8 {verdict.text()}", highlight=False)
    if repair and repair.undecided:
        stdout.print(f"int8: {repair.undecided}", highlight=False, soft_wrap=True)
    rows = written.int8_layers
    if rows:
        stdout.print(f"int8 worst layers ({len(rows)} quantized tensors; all: `sdeploy quant-report`):",
                     highlight=False)
        for row in worst(rows, worst_count):
            stdout.print("  " + summary_line(row), highlight=False, soft_wrap=True)
