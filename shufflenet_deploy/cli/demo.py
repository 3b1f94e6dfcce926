"""`sdeploy demo` (what `make demo` runs): the main job on the bundled default model, and the paper's question.

1. Exports the bundled trained ShuffleNet v1 g3 0.5x (digits, 64 px) to fp32 and int8 TFLite (calibrated on the
   bundled calibration split, accuracy measured on the val split) and benchmarks both on `local` with per-op
   times: MACs, GMAC/s, % of this machine's measured peak, int8 vs fp32 and why.
2. Answers the paper's question on this machine: a quick sweep (`sdeploy sweep --preset quick`, its final pass
   at the full preset's rounds, so the ratios are timed side by side) of the zoo models the paper compares at
   224 px in fp32 (0.5x vs 1x g=3: 3.7x apart in MACs; g=3 vs g=8 at 1x: equal MACs), with random weights
   (latency does not depend on them), then one line per pair: "N.Nx fewer MACs -> M.Mx faster here", beside
   the paper's ARM figures, and where the time of the 1x model goes.
3. Writes one report of both.

`demo_out/` is the demo's own: a rerun replaces what an earlier demo wrote there (and nothing else).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import click

from ..bundled import default_checkpoint
from ..errors import UserError

# The paper's pairs, measured at the paper's size; the sweep's export cache keeps the exports for the next demo.
PAIR_MODELS = ("shufflenet_v1_g3_0.5x", "shufflenet_v1_g3_1.0x", "shufflenet_v1_g8_1.0x")
PAIR_SIZE = 224
SWEEP_FILES = ("bench.json", "bench.csv", ".sdeploy.lock")


@click.command()
@click.option("-o", "--outdir", type=click.Path(path_type=Path), default=Path("demo_out"), show_default=True)
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="a checkpoint  [default: the bundled ShuffleNet v1 g3 0.5x, digits 64 px]")
@click.option("--runs", default=50, show_default=True)
@click.option("--pairs/--no-pairs", default=True, show_default=True,
              help="also measure the paper's pairs (ShuffleNet 0.5x vs 1x, g=3 vs g=8) at 224 px: ~1-2 min")
@click.pass_context
def demo(ctx, outdir, checkpoint, runs, pairs):
    """Export the bundled trained ShuffleNet to int8 TFLite, benchmark it here, and answer the paper's question."""
    from ..extras import require
    from .analysis import sweep
    from .bench import bench
    from .export import export

    require("export", "sdeploy demo")
    checkpoint = checkpoint or default_checkpoint()
    if not Path(checkpoint).exists():
        raise UserError(f"bundled model {checkpoint} is missing", "run `make models` to train it (a few minutes)")
    from ..analysis.report import build_report

    export_dir, pairs_dir = outdir / "export", outdir / "pairs"
    if pairs:
        _clear_sweep(pairs_dir)  # before anything is measured: a folder we did not write stops the demo here
    ctx.invoke(export, checkpoint=checkpoint, precision="fp32,int8", outdir=export_dir, force=True)
    ctx.invoke(bench, artifact=export_dir, device_name="local", runs=runs, threads=[1],
               outdir=outdir / "bench-local", op_profile=True, force=True)
    sources = [outdir / "bench-local"]
    if pairs:
        click.echo(f"\nthe paper's pairs at {PAIR_SIZE} px, fp32, random weights (latency does not depend on "
                   "them): exported once (cached), timed side by side", err=True)
        ctx.invoke(sweep, device_name="local", pattern=",".join(PAIR_MODELS), precision="fp32",
                   input_sizes=str(PAIR_SIZE), outdir=pairs_dir, preset="quick", interleaved_rounds=8)
        sources.append(pairs_dir)
    build_report(sources, outdir / "report", title="The bundled ShuffleNet and the paper's pairs on this machine")
    if pairs:
        for line in answer_lines(pairs_dir):
            click.echo(line)
    click.echo(f"report (MACs vs time per op, GMAC/s, % of peak, int8 vs fp32): {outdir / 'report' / 'report.html'}")


def answer_lines(pairs_dir: Path) -> list[str]:
    """The paper's question answered from the pairs' sweep: the machine, one line per pair, where the time goes."""
    from ..analysis import gap
    from ..bench.efficiency import cpu_line

    docs = gap.load_documents([pairs_dir])
    doc = docs.by_device["local"]
    facts = next((r.device_facts for r in doc.results if r.device_facts), None)
    lines = [f"\nThe paper's question on this machine ({cpu_line(facts)}; 1 thread):"]
    lines += [f"  {line}" for line in gap.paper_answer(gap.model_rows(doc))]
    fvt = gap.flops_vs_time(doc, "shufflenet_v1_g3_1.0x", "fp32")
    if fvt:
        lines.append(f"  {gap.where_time_goes(fvt)}")
    return lines


def _clear_sweep(folder: Path) -> None:
    """Remove an earlier demo's pairs sweep so this run measures afresh; refuse a folder holding anything a
    sweep does not write (it is not ours to delete)."""
    if not (folder.exists() or folder.is_symlink()):
        return
    if folder.is_symlink() or not folder.is_dir():
        raise UserError(f"{folder} is in the way and is not a folder the demo wrote", "choose another -o")
    foreign = [p.name for p in folder.iterdir()
               if not (p.name in SWEEP_FILES or (p.name.startswith("predictor-") and p.name.endswith(".json")))]
    if foreign:
        raise UserError(f"{folder} holds files the demo did not write ({', '.join(sorted(foreign)[:3])})",
                        "choose another -o, or move them")
    from ..bench.results import read_document

    if (folder / "bench.json").exists():
        read_document(folder / "bench.json")  # not results: a UserError naming the file, nothing deleted
    shutil.rmtree(folder)
