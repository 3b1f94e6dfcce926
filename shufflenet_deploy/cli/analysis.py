"""`sdeploy sweep`, `sdeploy report`, `sdeploy predict`: the FLOPs-vs-latency gap (shufflenet_deploy/analysis/)."""
from __future__ import annotations

from pathlib import Path

import click

from ..bench.settings import FULL, QUICK, parse_count, sweep_preset
from ..errors import DeviceError, UserError
from .common import comma_list, console, print_json, status, stdout


def _sizes(value: str) -> tuple:
    """--input-sizes 224,160,480x640 -> canonical sizes (a non-square one written HxW)."""
    from ..sizes import parse

    sizes = tuple(parse(v, "--input-sizes entry") for v in comma_list(value))
    if not sizes:
        raise UserError(f"bad --input-sizes {value!r}", "use comma-separated sizes, e.g. 224,160,480x640")
    return sizes


def _count(minimum: int = 1):
    """A click callback: the option's value as a whole number >= minimum, or one line naming the option."""
    return lambda ctx, param, value: parse_count(param.opts[0], value, minimum)


def _presets(field: str) -> str:
    """"[full 30, quick 5]": a setting's value in each preset, for --help."""
    return f"[full {getattr(FULL, field)}, quick {getattr(QUICK, field)}]"


def _preset_name(ctx, param, value):
    return sweep_preset(value).preset  # an unknown name is one line


def _precisions(value: str) -> tuple[str, ...]:
    precisions = tuple(comma_list(value))
    bad = [p for p in precisions if p not in ("fp32", "int8")]
    if bad or not precisions:
        raise UserError(f"unknown precision {bad[0] if bad else '(none)'!r} for a sweep", "use fp32, int8 or both")
    return precisions


@click.command()
@click.option("--device", "device_name", required=True,
              help="device profile name (see `sdeploy devices`); several (a,b) or a [groups] name run concurrently "
                   "into OUT/DEVICE/, one worker per device")
@click.option("--devices", "devices_file", type=click.Path(dir_okay=False), help="devices TOML file")
@click.option("--models", "pattern", help="comma-separated zoo names, fnmatch patterns, checkpoint files or export "
              "folders (default: the gap set)")
@click.option("--precision", default="fp32,int8", show_default=True)
@click.option("--input-sizes", default="224", show_default=True, help="comma-separated; HxW for non-square")
@click.option("-o", "--out", "outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("sweep"),
              show_default=True, help="results folder (bench.json is appended per model; rerun to resume)")
@click.option("--preset", default="full", show_default=True, callback=_preset_name, metavar="full|quick",
              help="how hard every step measures: full (publishable medians) or quick (a quick look at a fraction "
              "of the time: every output still filled, noisier); the options below override it")
@click.option("--runs", callback=_count(1), metavar="N",
              help=f"whole-model timed runs per model {_presets('runs')}: one inference each; more, a steadier "
              "median")
@click.option("--warmup", callback=_count(0), metavar="N",
              help=f"whole-model warm-up runs {_presets('warmup')}: one inference each, untimed; settle caches and "
              "clocks")
@click.option("--op-runs", callback=_count(1), metavar="N",
              help=f"per-op timing: runs of each single-op model per round {_presets('op_runs')}: most of a "
              "sweep's time; more, steadier per-op shares and predictor")
@click.option("--op-rounds", callback=_count(1), metavar="N",
              help=f"per-op timing: interleaved rounds {_presets('op_rounds')}: multiplies --op-runs; more rounds "
              "spread load drift over all ops")
@click.option("--interleaved-rounds", callback=_count(1), metavar="N",
              help=f"rounds of the final pass timing all models side by side {_presets('interleaved_rounds')}: "
              f"each times every model {FULL.interleaved_runs} (quick {QUICK.interleaved_runs}) times; more, "
              "drift-proof speedups")
@click.option("--peak/--no-peak", "peak", default=None,
              help=f"time the device's peak kernels ({FULL.peak_runs}x{FULL.peak_rounds} runs of 4 large kernels, "
              f"quick {QUICK.peak_runs}x{QUICK.peak_rounds}; default: on) for % of peak; --no-peak skips them: % "
              "of peak is unknown unless `sdeploy bench` cached one")
@click.option("--threads", type=click.IntRange(1), help="thread count (default: the profile's first)")
@click.option("--num-classes", type=click.IntRange(2), default=1000, show_default=True)
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="measure the lowered graph `sdeploy export` ships, or onnx2tf's plain output (as `sdeploy export "
              "--no-optimize`)")
@click.option("--cores", type=click.Choice(["big", "little", "prime", "all"]),
              help="pin the sweep to this cluster of each device (from its /proc/cpuinfo)")
def sweep(device_name, devices_file, pattern, precision, input_sizes, outdir, preset, runs, warmup, op_runs,
          op_rounds, interleaved_rounds, peak, threads, num_classes, optimize, cores):
    """Export (cached) and benchmark a set of zoo models on --device, with per-op timings and the peak."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ..analysis import predict as pred_mod
    from ..analysis.sweep import DEFAULT_MODELS, require_stack, run_sweep, sources
    from ..zoo.registry import list_models

    models = list(DEFAULT_MODELS)
    if pattern:
        models = []
        for part in comma_list(pattern):
            found = [part] if Path(part).exists() else (
                list_models(part) if any(c in part for c in "*?[") else [part])
            if not found:
                raise UserError(f"--models {part!r} matches no zoo model", "see `sdeploy zoo`")
            models += [m for m in found if m not in models]
    sizes, precisions = _sizes(input_sizes), _precisions(precision)
    settings = sweep_preset(preset).with_overrides(runs=runs, warmup=warmup, op_runs=op_runs, op_rounds=op_rounds,
                                                   interleaved_rounds=interleaved_rounds, peak=peak)
    require_stack(sources(models, sizes))
    from ..devices.registry import device_names

    names = device_names(device_name, devices_file)
    if settings.preset != "full":
        click.echo(f"measuring with the {settings.preset} preset: a quick look, noisier than --preset full",
                   err=True)
    if len(names) > 1:
        return _sweep_devices(names, devices_file, models, precisions, sizes, outdir, settings, threads,
                              num_classes, optimize, cores)
    total = len(models) * len(sizes) * len(precisions)
    with Progress(SpinnerColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  TextColumn("{task.description}", markup=False), console=console(stderr=True),
                  transient=False) as bar:
        task = bar.add_task("starting", total=total)
        done: set[tuple[str, str]] = set()

        def progress(msg: str) -> None:
            if msg.endswith("done already, skipping") or msg.startswith("skipping "):
                bar.advance(task, len(precisions) if msg.endswith("skipping") and "done already" in msg else 0)
            bar.update(task, description=msg[:110])

        def model_done(key, p):
            done.add((key, p))
            bar.advance(task)

        doc = run_sweep(device_name, devices_file=devices_file, models=models, precisions=precisions,
                        input_sizes=sizes, outdir=outdir, settings=settings, threads=threads,
                        num_classes=num_classes, lowered=optimize, progress=progress, on_model_done=model_done,
                        cores=cores)
    for s in doc.skipped:
        click.echo(f"skipped {s['key']}{' ' + s['precision'] if s.get('precision') else ''}: {s['reason']}",
                   err=True)
    if not doc.results and doc.skipped:  # every name skipped (a typo, a pattern of nothing): not a success
        raise UserError(f"nothing was measured: all {len(doc.skipped)} model(s) were skipped (see above)",
                        "check --models (`sdeploy zoo` lists the names)")
    try:
        pred = pred_mod.fit(doc)
        stored = pred_mod.store(pred, outdir)
        click.echo(f"predictor fitted ({_pct(pred.within_10pct)} within ±10%, leave-one-out): {stored}",
                   err=True)
    except UserError as err:
        click.echo(f"no predictor fitted: {err.one_line()}", err=True)
    click.echo(f"{len(doc.results)} results in {outdir / 'bench.json'}; report with "
               f"`sdeploy report {outdir} -o {outdir}/report`", err=True)


def _sweep_devices(names, devices_file, models, precisions, sizes, outdir, settings, threads, num_classes,
                   optimize, cores=None) -> None:
    """`sweep --device a,b`: one worker per device (bench/fleet.py), OUT/DEVICE/ each, a predictor per device;
    every device measures with the same settings."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ..analysis import predict as pred_mod
    from ..analysis.sweep import run_sweep
    from ..bench.fleet import raise_for_failures, run_fleet

    total = len(models) * len(sizes) * len(precisions)
    with Progress(SpinnerColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  TextColumn("{task.description}", markup=False), console=console(stderr=True),
                  transient=False) as bar:
        tasks = {name: bar.add_task(f"[{name}] starting", total=total) for name in names}

        def job(name, progress):
            doc = run_sweep(name, devices_file=devices_file, models=models, precisions=precisions, input_sizes=sizes,
                            outdir=outdir / name, settings=settings, threads=threads,
                            num_classes=num_classes, lowered=optimize, progress=progress,
                            on_model_done=lambda key, p: bar.advance(tasks[name]), cores=cores)
            try:
                pred_mod.store(pred_mod.fit(doc), outdir / name)
            except UserError as err:
                progress(f"no predictor fitted: {err.one_line()}")
            return doc

        outcomes = run_fleet(names, job, lambda d, msg: bar.update(tasks[d], description=f"[{d}] {msg}"[:110]))
    for name, o in outcomes.items():
        if o.ok:
            click.echo(f"{name}: {len(o.value.results)} results in {outdir / name / 'bench.json'} "
                       f"({o.seconds:.0f} s)", err=True)
    click.echo(f"report all devices side by side: `sdeploy report {' '.join(str(outdir / n) for n in names)} "
               f"-o {outdir}/report`", err=True)
    raise_for_failures(outcomes, "sdeploy sweep")


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", "outdir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--allow-mixed", is_flag=True, help="allow results from different devices in one report")
@click.option("--title", help="report title")
def report(results, outdir, allow_mixed, title):
    """Write the gap report (HTML + PNGs + Markdown + CSV) from sweep RESULTS (folders or bench.json files)."""
    from ..analysis.report import build_report

    out = build_report(list(results), outdir, allow_mixed=allow_mixed, title=title)
    s = out.summary
    on = (lambda device: f"{device}: ") if len(s.devices) > 1 else (lambda device: "")
    for device, exps in s.exponents.items():
        for e in exps:
            click.echo(f"{on(device)}{e.precision} {e.scope}: latency ~ MACs^{e.fit.k:.3f}", err=True)
    for device, within in s.within_10pct.items():
        if within is not None:
            click.echo(f"{on(device)}predictor within ±10%: {100 * within:.0f}%", err=True)
    for note in s.no_peak:
        click.echo(f"{note}: no measured peak (% of peak omitted)", err=True)
    click.echo(f"wrote {outdir / 'report.html'} (+ report.md, CSVs, PNGs)", err=True)


@click.command()
@click.argument("model")
@click.option("--device", "device_name", required=True)
@click.option("--input-size", default="224", show_default=True, help="side, or height,width")
@click.option("--precision", type=click.Choice(["fp32", "int8"]), default="fp32", show_default=True)
@click.option("--predictor", "predictor_file", type=click.Path(dir_okay=False, path_type=Path),
              help="predictor JSON (default: the one the device's last sweep stored in the cache)")
@click.option("--devices", "devices_file", type=click.Path(dir_okay=False), help="devices TOML file")
@click.option("--force-predictor", is_flag=True,
              help="predict even where the predictor was fitted on another machine (CPU, cores, ISA or runtime): "
                   "the number is then a guess, and says so")
@click.option("--json", "as_json", is_flag=True)
def predict(model, device_name, input_size, precision, predictor_file, devices_file, force_predictor, as_json):
    """Predict MODEL's latency on --device from the per-op model fitted by `sdeploy sweep`.

    The predictor holds only on the machine it was fitted on: the device's CPU facts and runtime are read first
    and compared with the predictor's (same facts under another device name is fine)."""
    from dataclasses import asdict

    from ..analysis import predict as pred_mod
    from ..tflite.ops import GROUP_LABELS, GROUPS, model_ops
    from ..analysis.export_cache import export_cached, export_folder
    from ..zoo.registry import get_spec

    from ..sizes import parse, size_str

    get_spec(model)  # unknown names fail here, with a suggestion
    input_size = parse(input_size)
    predictor = pred_mod.load_predictor(predictor_file or pred_mod.default_path(device_name), device_name)
    fitted = predictor.machine
    try:
        differs = _predictor_differences(predictor, device_name, devices_file)
    except DeviceError as err:
        if not force_predictor:
            raise
        differs = [f"{device_name}'s facts could not be read ({err.one_line()})"]
    if differs and not force_predictor:
        raise UserError(f"the predictor ({predictor.device!r}) does not hold on {device_name}: "
                        + "; ".join(differs),
                        f"fit one here with `sdeploy sweep --device {device_name}`, or pass --force-predictor")
    lowered = predictor.lowered  # the graph the predictor was fitted on
    precisions = ("fp32", "int8")  # reuse a sweep's export of both, else export just the one asked for
    if not (export_folder(model, input_size, precisions, lowered=lowered) / "manifest.json").exists():
        precisions = (precision,)
    with status(f"exporting {model} (cached)") as st:
        folder = export_cached(model, input_size, precisions, st, lowered=lowered)
    from ..manifest import Manifest, model_key

    ops = [o.to_dict() for o in model_ops(Manifest.load(folder).artifact(precision).path)]
    out = pred_mod.predict_ops(predictor, precision, ops)
    by_group = {g: 0.0 for g in GROUPS}
    for op in ops:
        by_group[op["group"]] += pred_mod.op_sum(predictor.model, precision, [op])[0]
    measured = predictor.measured_ms(model_key(model, input_size), precision)
    result = {"model": model, "device": device_name,
              "input_size": list(input_size) if isinstance(input_size, tuple) else input_size, "precision": precision,
              "predicted_ms": out.predicted_ms, "op_sum_ms": out.op_sum_ms, "paths": asdict(out.paths),
              "correction": out.correction.to_dict(), "by_group_ms": by_group, "measured_ms_in_sweep": measured,
              "predictor_within_10pct_loo": predictor.within_10pct,
              "fitted_on": fitted.to_dict() if fitted else None, "machine_differences": differs}
    if as_json:
        print_json(result)
        return
    corr, paths = out.correction, out.paths
    stdout.print(f"{model} @ {size_str(input_size)}px {precision} on {device_name}: predicted "
                 f"{out.predicted_ms:.3f} ms = {corr.a:.3f} (in-graph / alone, from {corr.n} swept models) "
                 f"x Σ ops {out.op_sum_ms:.3f} ms ({paths.lookup} ops measured, {paths.regression} from "
                 f"regressions, {paths.fused} PADs folded into their conv)")
    from rich.text import Text

    stdout.print(f"fitted on: {fitted.summary() if fitted else 'an unrecorded machine'}"
                 + (f" (device {predictor.device!r})" if predictor.device != device_name else ""))
    if differs:
        stdout.print(Text.assemble(("a guess (--force-predictor)", "bold"), ": " + "; ".join(differs)))
    if measured:
        stdout.print(f"measured in the sweep: {measured:.3f} ms")
    for g in GROUPS:
        if by_group[g]:
            stdout.print(f"  {GROUP_LABELS[g]:<24} {by_group[g]:8.3f} ms (uncorrected)")


def _predictor_differences(predictor, device_name: str, devices_file) -> list[str]:
    """Read the device's CPU facts and runtime (one short connection) and say what differs from the predictor's."""
    from ..analysis import predict as pred_mod
    from ..bench.backends import backend_for
    from ..devices.registry import get_device

    profile = get_device(device_name, devices_file)
    with backend_for(profile) as backend:
        cpu, runtime = backend.device_facts(), backend.runtime_info()
    return pred_mod.differences(predictor, cpu.to_dict() if cpu else None, runtime.to_dict() if runtime else None)
