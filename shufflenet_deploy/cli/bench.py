"""`sdeploy bench`: benchmark TFLite artifacts (and an export's ONNX file under ONNX Runtime) on a named device, or
import hand-run benchmark_model output."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..bench.settings import BENCH_PRESETS, bench_preset, parse_count
from ..errors import UserError

FULL, QUICK = BENCH_PRESETS["full"], BENCH_PRESETS["quick"]


def _count(minimum: int = 1):
    """A click callback: the option's value as a whole number >= minimum, or one line naming the option."""
    return lambda ctx, param, value: parse_count(param.opts[0], value, minimum)


def _presets(field: str) -> str:
    return f"[full {getattr(FULL, field)}, quick {getattr(QUICK, field)}]"


def _threads(ctx, param, value):
    if value is None:
        return None
    try:
        threads = [int(t) for t in value.split(",") if t.strip()]
    except ValueError:
        threads = []
    if not threads or min(threads) < 1:
        raise UserError(f"bad --threads {value!r}", "use a comma-separated list of positive integers, e.g. 1,4")
    return threads


@click.command()
@click.argument("artifact", required=False, type=click.Path(path_type=Path))
@click.option("--device", "device_name",
              help="device profile name (see `sdeploy devices`); several (a,b) or a [groups] name run concurrently, "
                   "one worker per device")
@click.option("--devices", "devices_file", type=click.Path(dir_okay=False), help="devices TOML file")
@click.option("--threads", callback=_threads, help="thread counts, e.g. 1,4 (default: the profile's)")
@click.option("--preset", default="full", show_default=True, metavar="full|quick",
              callback=lambda ctx, param, value: bench_preset(value).preset,
              help="how hard to measure: full, or quick (a quick look at a fraction of the time, noisier; results "
              "say so); --runs/--warmup/--instances/--trials override it; peak kernels keep full counts")
@click.option("--runs", callback=_count(1), metavar="N",
              help=f"timed runs per trial {_presets('runs')}: one inference each; more, a steadier median and tail")
@click.option("--warmup", callback=_count(0), metavar="N",
              help=f"untimed warm-up runs {_presets('warmup')}: one inference each; settle caches and clocks")
@click.option("--min-seconds", type=click.FloatRange(0), default=0, show_default=True,
              help="keep running until both --runs and this many seconds are reached")
@click.option("--trials", callback=_count(1), metavar="N",
              help=f"repeat each measurement {_presets('trials')}: a runner process each; shows run-to-run spread")
@click.option("--instances", callback=_count(1), metavar="N",
              help=f"interpreters each measurement's runs are spread over {_presets('instances')} (Linux devices; a "
              "lone interpreter can sit in a slow mode for its whole life): each costs a build and its warm-up")
@click.option("--cooldown", type=click.FloatRange(0), default=0, show_default=True,
              help="seconds to sleep between measurements")
@click.option("--timeout", type=click.FloatRange(1), default=600, show_default=True,
              help="seconds allowed per measurement")
@click.option("--benchmark-binary", type=click.Path(dir_okay=False, path_type=Path),
              help="Android benchmark_model binary (overrides the profile)")
@click.option("--input", "input_npy", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="NHWC float32 .npy input, preprocessed (Linux devices)")
@click.option("--save-outputs", type=click.Path(file_okay=False, path_type=Path),
              help="pull each model's raw output tensor here as .npy (Linux devices)")
@click.option("--parse", "parse_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="import a hand-run benchmark_model (or android_harness) output instead of running")
@click.option("--model", help="model name for --parse")
@click.option("--precision", help="precision for --parse")
@click.option("--op-profile", is_flag=True,
              help="also time every op (single-op models on Linux, benchmark_model's profile on Android)")
@click.option("--peak/--no-peak", "peak", default=None,
              help="--peak re-measures the device's peak compute; --no-peak uses only a cached one (default: "
              "measure it once per device, runtime and thread count, then reuse it)")
@click.option("--cores", type=click.Choice(["big", "little", "prime", "all"]),
              help="pin every run to this cluster, found from the device's /proc/cpuinfo (instead of the profile's "
                   "affinity); results say which cluster ran")
@click.option("--runtime", type=click.Choice(["tflite", "onnxruntime", "all"]), default="tflite", show_default=True,
              help="what runs on a Linux device: the TFLite files, the export's verified model.onnx under the device's "
                   "ONNX Runtime (rows with precision onnx), or all of them; a device without ONNX Runtime skips it "
                   "in one line (all)")
@click.option("--force", is_flag=True, help="replace the results already in the output folder (a partial result "
              "of an interrupted bench is always completed)")
@click.option("--json", "as_json", is_flag=True, help="print the results JSON instead of the table")
@click.option("-o", "--out", "outdir", type=click.Path(file_okay=False, path_type=Path),
              help="where to write bench.json + bench.csv (default: ARTIFACT's folder/bench-DEVICE)")
def bench(artifact, device_name, devices_file, threads, preset, runs, warmup, min_seconds, trials, instances,
          cooldown, timeout, benchmark_binary, input_npy, save_outputs, parse_file, model, precision, op_profile, peak,
          cores, runtime, force, as_json, outdir):
    """Benchmark ARTIFACT (a .tflite file or an export folder with manifest.json) on --device."""
    from ..bench.results import ResultsDocument, write_document

    if parse_file is not None:
        from ..bench.importer import import_benchmark_output
        from ..fileio import regular_file, safe_component
        from ..precisions import FILE_NAMES, ONNX_ROWS

        if precision is not None and precision not in FILE_NAMES + ONNX_ROWS:
            raise UserError(f"--precision {precision!r} is not a precision sdeploy knows",
                            f"use one of {', '.join(FILE_NAMES + ONNX_ROWS)}")

        text = regular_file(parse_file, "--parse", max_bytes=256 << 20).read_text(errors="replace")
        results, skipped = import_benchmark_output(text, device=device_name,
                                                   model=model, precision=precision,
                                                   threads=threads[0] if threads else None)
        for line in skipped:
            click.echo(f"skipped: {line}", err=True)
        outdir = outdir or Path.cwd() / f"bench-{safe_component(device_name or 'imported')}"
        results_folder_free(outdir, force)
    else:
        mode = {None: "auto", True: "measure", False: "skip"}[peak]
        settings = bench_preset(preset).with_overrides(runs=runs, warmup=warmup, instances=instances, trials=trials)
        args = (threads, settings, min_seconds, cooldown, timeout, benchmark_binary, input_npy, save_outputs, force)
        from ..devices.registry import device_names

        names = device_names(device_name, devices_file) if device_name else []
        if len(names) > 1:
            return _run_devices(artifact, names, devices_file, args, outdir, mode, op_profile, as_json, cores, runtime)
        results, outdir = _run(artifact, device_name, devices_file, *args, outdir, mode, op_profile, cores=cores,
                               runtime=runtime)
    from ..bench.fastest import line, name_fastest

    doc = ResultsDocument(results=results, fastest=name_fastest(results))
    json_path, csv_path = write_document(doc, outdir)
    if as_json:
        click.echo(json.dumps(doc.to_dict(), indent=2))
    else:
        _print_table(results)
        for f in doc.fastest:
            click.echo(line(f))
        click.echo(f"wrote {json_path} and {csv_path}", err=True)


def _run_devices(artifact, names, devices_file, args, outdir, peak, op_profile, as_json, cores=None,
                 runtime="tflite") -> None:
    """`--device a,b`: every device concurrently (bench/fleet.py), each into its own results folder."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ..bench.fastest import line, name_fastest
    from ..bench.fleet import raise_for_failures, run_fleet
    from ..bench.results import ResultsDocument, write_document

    if artifact is None:
        raise UserError("missing ARTIFACT", "pass a .tflite file or an export folder")
    base = outdir or (artifact if artifact.is_dir() else artifact.parent)
    with Progress(SpinnerColumn(), TimeElapsedColumn(), TextColumn("{task.description}", markup=False),
                  console=_stderr_console(), transient=False) as bar:
        tasks = {name: bar.add_task(f"[{name}] starting", total=None) for name in names}

        def job(name, progress):
            results, where = _run(artifact, name, devices_file, *args, base / f"bench-{name}", peak, op_profile,
                                  progress=progress, cores=cores, runtime=runtime)
            json_path, _ = write_document(ResultsDocument(results=results, fastest=name_fastest(results)), where)
            return results, json_path

        outcomes = run_fleet(names, job, lambda d, msg: bar.update(tasks[d], description=f"[{d}] {msg}"[:120]))
    if as_json:
        click.echo(json.dumps({name: ResultsDocument(results=o.value[0], fastest=name_fastest(o.value[0])).to_dict()
                               if o.ok else {"error": o.error}
                               for name, o in outcomes.items()}, indent=2))
    for name, o in outcomes.items():
        if o.ok:
            if not as_json:
                _print_table(o.value[0])
                for f in name_fastest(o.value[0]):
                    click.echo(line(f))
            click.echo(f"{name}: wrote {o.value[1]} ({o.seconds:.0f} s)", err=True)
    raise_for_failures(outcomes, "sdeploy bench")


def results_folder_free(outdir: Path, force: bool) -> None:
    """A results folder holding a finished bench.json is replaced only with --force (found before measuring, so
    nothing is measured for nothing); a partial one, from an interrupted bench, is completed by the rerun its
    message asked for. A bench.json that is not results is never replaced."""
    from ..bench.results import read_document

    existing, view = Path(outdir) / "bench.json", Path(outdir) / "bench.csv"
    if not (existing.exists() or existing.is_symlink()):
        if view.exists() or view.is_symlink():  # sdeploy writes the two together: a lone bench.csv is someone's
            raise UserError(f"{view} is in the way and is not results sdeploy can replace (no bench.json beside "
                            "it)", "choose another -o")
        return
    try:
        doc = read_document(existing)
    except UserError as err:
        raise UserError(f"{existing} is in the way and is not results sdeploy can replace ({err.message})",
                        "choose another -o") from None
    if not doc.partial and not force:
        raise UserError(f"{outdir} already holds results ({len(doc.results)} rows, {doc.created or 'undated'})",
                        "pass --force to replace them, or choose another -o")


def _stderr_console():
    from .common import console

    return console(stderr=True)


def _run(artifact, device_name, devices_file, threads, settings, min_seconds, cooldown, timeout, benchmark_binary,
         input_npy, save_outputs, force, outdir, peak="auto", op_profile=False, progress=None, cores=None,
         runtime="tflite"):
    """One device: measure with `settings` (bench/settings.BenchSettings) -> (results, outdir)."""
    import contextlib
    import dataclasses

    from ..bench.backends import BenchInterrupted
    from ..bench.harness import bench_artifact
    from ..bench.results import write_results
    from ..devices.registry import get_device
    from ..fileio import check_writable

    if artifact is None:
        raise UserError("missing ARTIFACT", "pass a .tflite file or an export folder (or --parse FILE)")
    if not device_name:
        raise UserError("missing --device", "name a profile from `sdeploy devices`, e.g. --device local")
    profile = get_device(device_name, devices_file)
    if benchmark_binary is not None:
        profile = dataclasses.replace(profile, benchmark_binary=str(benchmark_binary))
    if outdir is None:
        outdir = (artifact if artifact.is_dir() else artifact.parent) / f"bench-{profile.name}"
    check_writable(outdir, "results folder")  # before the benchmark, not after it
    results_folder_free(outdir, force)
    if save_outputs is not None:
        check_writable(save_outputs, "--save-outputs folder")
    from .common import status as spinner

    with contextlib.nullcontext() if progress else spinner(f"benchmarking on {profile.name}") as status:
        if progress is None:
            def progress(msg: str) -> None:
                status(f"[{profile.name}] {msg}")

        try:
            results = bench_artifact(artifact, profile, threads=threads, runs=settings.runs, warmup=settings.warmup,
                                     min_seconds=min_seconds, cooldown_s=cooldown, trials=settings.trials,
                                     timeout=timeout, progress=progress, input=input_npy,
                                     save_outputs_dir=save_outputs, instances=settings.instances, peak=peak,
                                     op_profile=op_profile, cores=cores, runtime=runtime)
        except BenchInterrupted as err:
            if not err.results:
                raise
            _note(err.results, settings)
            json_path, _ = write_results(err.results, outdir, partial=True)
            hint = f"{err.hint.rstrip('. ')}; " if err.hint else ""
            raise BenchInterrupted(err.message, f"{hint}{len(err.results)} finished measurement(s) kept in "
                                   f"{json_path} (partial): rerun the same command for the rest",
                                   err.results) from None
    _note(results, settings)
    return results, outdir


def _note(results, settings) -> None:
    """Results measured with a preset other than full say so (their counts are in each result anyway)."""
    note = settings.note()
    for r in results if note else []:
        r.notes.append(note)


def _fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def _print_table(results) -> None:
    from rich.table import Table
    from rich.text import Text

    from .common import console as make_console

    device = results[0].device if results else "?"
    table = Table(title=f"sdeploy bench on {device} (ms)")
    for col in ("model", "precision", "threads", "p50", "p90", "p99", "mean±std", "first", "init", "RSS MB",
                "MACs M", "GMAC/s", "% peak", "runtime", "warnings"):
        table.add_column(col, justify="left" if col in ("model", "precision", "runtime") else "right")
    for r in results:
        lat = r.latency_ms or {}
        runtime = r.runtime or {}
        table.add_row(r.key, r.precision, str(r.threads), _fmt(lat.get("p50")), _fmt(lat.get("p90")),
                      _fmt(lat.get("p99")), f"{_fmt(lat.get('mean'))}±{_fmt(lat.get('std'))}",
                      _fmt(r.first_inference_ms), _fmt(r.init_ms), _fmt(r.peak_rss_mb, 1),
                      _fmt(r.macs / 1e6 if r.macs else None, 1), _fmt(r.gmacs_per_s, 1),
                      _fmt(100 * r.peak_fraction if r.peak_fraction is not None else None, 0),
                      f"{runtime.get('name') or '?'} {runtime.get('version') or ''}".strip(),
                      str(len(r.warnings)) + (" (partial)" if r.partial else ""))
    console = make_console()
    if not console.is_terminal:
        console = make_console(width=200)
    console.print(table)
    for line in gap_lines(results):
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    err_console = make_console(stderr=True, soft_wrap=True)
    for r in results:
        for w in r.warnings:
            err_console.print(Text.assemble(("warning", "yellow"), f" {r.model} {r.precision} t={r.threads}: {w}"),
                              highlight=False)


def gap_lines(results) -> list[str]:
    """The FLOPs gap in words: the device, each row's efficiency, int8 vs fp32 and why."""
    from ..bench.efficiency import cpu_line, int8_vs_fp32
    from ..precisions import peak_precision

    lines = []
    facts = next((r.device_facts for r in results if r.device_facts), None)
    lines.append(f"device: {cpu_line(facts)}")
    for r in results:
        if r.cores not in (None, "all"):
            lines.append(f"{r.key} {r.precision} t={r.threads}: pinned to the {r.cores} cores ({r.affinity})")
        if r.peak_fraction is not None:
            lines.append(f"{r.key} {r.precision} t={r.threads}: {r.macs / 1e6:.1f} M MACs in {r.latency_ms['p50']:.3f}"
                         f" ms = {r.gmacs_per_s:.1f} GMAC/s, {100 * r.peak_fraction:.0f}% of the measured "
                         f"{peak_precision(r.precision)} peak ({r.peak_gmacs:.0f} GMAC/s)")
        elif r.gmacs_per_s is not None:
            lines.append(f"{r.key} {r.precision} t={r.threads}: {r.macs / 1e6:.1f} M MACs = {r.gmacs_per_s:.1f} "
                         f"GMAC/s; % of peak unknown: {r.peak_missing_reason}")
        else:
            lines.append(f"{r.key} {r.precision} t={r.threads}: {r.peak_missing_reason}")
    for row in int8_vs_fp32(results, facts):
        lines.append(f"{row.model_key} t={row.threads}: {row.explanation}")
    return lines
