"""benchmark_model parser: the real samples (values read from the files), one grammar-built fixture per format
variant, the bench-schema mapping, and android_harness/run_benchmarks.sh run for real against a fake binary."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import FIXTURES, REPO
from shufflenet_deploy.bench.android_harness import parse_harness_output
from shufflenet_deploy.bench.benchmark_model import parse_benchmark_output, parse_many, parse_stat
from shufflenet_deploy.bench.benchmark_model_run import to_bench_schema
from shufflenet_deploy.bench.stats import compare_conditions
from shufflenet_deploy.errors import UserError

FIX = FIXTURES / "benchmark_model"
SAMPLES = FIXTURES / "benchmark_model_output"
SCRIPT = REPO / "android_harness" / "run_benchmarks.sh"


def sample(name: str) -> str:
    """The fenced output block of a reference sample markdown file."""
    return re.search(r"```\n(.*?)```", (SAMPLES / name).read_text(), re.S).group(1)


def sample_b_sections() -> list[str]:
    """Sample B holds four outputs separated by the author's `--- (...) ---` lines."""
    return re.split(r"^--- \(.*\) ---$", sample("sample_B_tf24_peak_memory_and_failure.md"), flags=re.M)


def fixture(name: str) -> str:
    return (FIX / name).read_text()


# ------------------------------------------------------------------------------------------- real samples


def test_sample_a_old_format_latency_and_memory():
    run = parse_benchmark_output(sample("sample_A_old_format_op_profiling.md"))
    assert not run.failed
    assert run.graph == "./mobilenet_v1_1.0_224.tflite"
    assert run.num_threads == 4
    assert run.model_size_mb == pytest.approx(16.9008)
    assert run.init_ms == pytest.approx(17.187)
    assert run.first_inference_ms == pytest.approx(3512.391)
    assert run.warmup_avg_ms == pytest.approx(3512.39)  # "Warmup (avg): 3.51239e+06"
    assert run.inference_avg_ms == pytest.approx(2950.34)  # "Inference (avg): 2.95034e+06"
    assert run.inference_min_ms == pytest.approx(2727.568)
    assert run.inference_max_ms == pytest.approx(3189.954)
    assert run.inference_std_ms == pytest.approx(109.798)
    assert run.inference_count == 50
    assert run.warmup_stat.count == 1 and run.warmup_stat.curr_ms == pytest.approx(3512.391)
    assert run.inference_stat.first_ms == pytest.approx(2990.275)
    assert run.memory_line == "delta"
    assert (run.memory_init_mb, run.memory_overall_mb) == pytest.approx((4.21094, 46.0859))
    assert run.peak_memory_mb == pytest.approx(46.0859)


def test_sample_a_old_format_op_profile():
    run = parse_benchmark_output(sample("sample_A_old_format_op_profiling.md"))
    init = run.init_profile
    assert [(r.node_type, r.avg_ms, r.times_called) for r in init.run_order] == [("AllocateTensors", 1.356, 1)]
    assert init.nodes_executed == 1 and init.nodes_observed == 1
    prof = run.op_profile
    assert prof.table_format == "old"
    first = prof.run_order[0]
    assert (first.node_type, first.name) == ("CONV_2D", "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0")
    assert (first.start_ms, first.first_ms, first.avg_ms) == pytest.approx((0.066, 87.754, 60.957))
    assert (first.percent, first.cdf_percent, first.mem_kb, first.times_called) == (2.066, 2.066, 0.0, 1)
    last = prof.run_order[-1]
    assert (last.node_type, last.name, last.start_ms) == ("SOFTMAX", "[MobilenetV1/Predictions/Reshape_1]:30", 2950.011)
    assert len(prof.run_order) == 8  # 3 + 5 rows printed, 23 omitted by the sample's author
    assert [r.name for r in prof.top_by_time][0] == "[MobilenetV1/MobilenetV1/Conv2d_5_pointwise/Relu6]:10"
    assert [(t.node_type, t.count, t.avg_ms, t.percent) for t in prof.by_type[:2]] == [
        ("CONV_2D", 15, 2651.853, 89.897), ("DEPTHWISE_CONV_2D", 13, 296.919, 10.065)]
    assert len(prof.by_type) == 5
    assert prof.nodes_executed == 31 and prof.nodes_observed == 31
    assert prof.timings.count == 50 and prof.timings.avg_ms == pytest.approx(2949.9)  # "avg=2.9499e+06"
    assert any("23 rows omitted" in w for w in run.warnings)  # the gap in the table is reported, not hidden


def test_sample_b_tf24_peak_memory_sections():
    fp32, int8 = (parse_benchmark_output(s) for s in sample_b_sections()[:2])
    assert fp32.inference_avg_ms == pytest.approx(249.684)
    assert (fp32.inference_min_ms, fp32.inference_max_ms, fp32.inference_std_ms) == pytest.approx(
        (247.067, 254.474, 1.442))
    assert fp32.inference_count == 50
    assert (fp32.init_ms, fp32.first_inference_ms, fp32.warmup_avg_ms) == pytest.approx((16.242, 360.262, 304.586))
    assert fp32.memory_line == "peak"
    assert (fp32.memory_init_mb, fp32.peak_memory_mb) == pytest.approx((4.92969, 138.809))
    assert fp32.warmup_stat is None  # the lone Stat line is the regular run (its avg matches "Inference (avg)")
    assert int8.inference_avg_ms == pytest.approx(95.7883)
    assert int8.inference_std_ms == pytest.approx(1.284)
    assert int8.peak_memory_mb == pytest.approx(36.9883)


def test_sample_b_nnapi_delegate_rows():
    run = parse_benchmark_output(sample_b_sections()[2])
    init = run.init_profile.run_order
    assert (init[0].node_type, init[0].mem_kb, init[0].avg_ms) == ("ModifyGraphWithDelegate", 1748.0, 413.346)
    assert (init[1].node_type, init[1].times_called, init[1].avg_ms) == ("AllocateTensors", 2, 158.023)
    rows = {r.node_type: r for r in run.op_profile.run_order}
    nnapi = rows["TfLiteNnapiDelegate"]
    assert nnapi.name == "[model/tf.nn.silu_16/mul, model/tf.nn.silu_26/mul, model/tf.nn.silu_35/mul]:231"
    assert (nnapi.start_ms, nnapi.avg_ms, nnapi.percent) == (8.377, 79.010, 49.781)
    assert rows["RESIZE_NEAREST_NEIGHBOR"].name == "[model/lambda/resize/ResizeNearestNeighbor]:143"
    types = {t.node_type: t for t in run.op_profile.by_type}
    assert (types["TfLiteNnapiDelegate"].count, types["TfLiteNnapiDelegate"].avg_ms) == (3, 149.483)
    assert run.op_profile.nodes_executed == 11
    assert run.op_profile.timings.avg_ms == pytest.approx(158.715)


def test_sample_b_failure():
    run = parse_benchmark_output(sample_b_sections()[3])
    assert run.failed
    assert run.error == "Node number 248 (TfLiteNnapiDelegate) failed to prepare."
    assert "Failed to apply NNAPI delegate." in run.errors and "Benchmarking failed." in run.errors
    assert "Restored original execution plan after delegate application failure." in run.warnings


def test_sample_b_whole_file_splits_without_starting_markers():
    runs = parse_many(sample("sample_B_tf24_peak_memory_and_failure.md"))
    assert len(runs) == 3  # fp32, int8 (+ the NNAPI tables, which carry no marker of their own), failure
    assert [r.inference_avg_ms for r in runs[:2]] == pytest.approx([249.684, 95.7883])
    assert [r.failed for r in runs] == [False, False, True]


def test_sample_f_very_old_average_line():
    run = parse_benchmark_output(sample("sample_F_official_readme.md"))
    assert (run.inference_avg_ms, run.warmup_avg_ms, run.init_ms) == pytest.approx((79.7609, 83.235, 38.467))
    assert run.inference_count is None  # no top-level Stat line in this excerpt
    types = run.op_profile.by_type
    assert [t.node_type for t in types] == ["CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX", "RESHAPE", "AVERAGE_POOL_2D"]
    assert (types[0].count, types[0].avg_ms, types[0].percent, types[0].times_called) == (15, 1.406, 89.27, 0)
    assert run.op_profile.nodes_executed == 31
    assert run.op_profile.timings.min_ms == pytest.approx(77.385)


# ------------------------------------------------------------------------------------------- grammar fixtures

NEW_FORMAT_FILES = ["new_info_xnnpack_percentiles.txt", "logcat_threadtime_new_tables.txt",
                    "new_tables_spaces_no_tabs.txt"]


@pytest.mark.parametrize("name", NEW_FORMAT_FILES)
def test_new_format_with_percentiles_and_xnnpack(name):
    run = parse_benchmark_output(fixture(name))
    assert not run.failed and run.warnings == []
    assert run.graph == "/data/local/tmp/shufflenet_v1_g3_1.0x_fp32.tflite" and run.num_threads == 4
    assert (run.init_ms, run.first_inference_ms, run.inference_avg_ms) == pytest.approx((5.63, 6.021, 3.70107))
    assert (run.inference_p5_ms, run.inference_median_ms, run.inference_p95_ms) == pytest.approx((3.648, 3.69, 3.79))
    assert run.warmup_stat.count == 135 and run.warmup_stat.median_ms == pytest.approx(3.688)
    assert run.inference_count == 270
    assert run.periodic_peak_mb == pytest.approx(27.1289)
    assert (run.peak_memory_mb, run.peak_memory_source) == (pytest.approx(27.1289), "periodic_monitoring")
    [part] = run.partitions
    assert (part.delegate, part.nodes_replaced, part.nodes_total, part.partitions) == ("TfLiteXNNPackDelegate", 95,
                                                                                       95, 1)
    assert "Created TensorFlow Lite XNNPACK delegate for CPU." in run.delegate_lines
    prof = run.op_profile
    assert prof.table_format == "new"
    assert [r.start_ms for r in prof.run_order] == [None] * 6
    conv = prof.run_order[1]
    assert (conv.node_type, conv.name) == ("Convolution (NHWC, F32) IGEMM", "Delegate/Convolution (NHWC, F32) IGEMM:0")
    assert (conv.first_ms, conv.avg_ms, conv.percent, conv.cdf_percent) == (0.412, 0.398, 21.505, 21.505)
    gemm = prof.run_order[3]
    assert (gemm.node_type, gemm.times_called) == ("Convolution (NHWC, F32) GEMM", 3)
    assert [r.node_type for r in prof.top_by_time] == ["Convolution (NHWC, F32) GEMM", "Fully Connected (NC, F32) GEMM"]
    fc = next(t for t in prof.by_type if t.node_type == "Fully Connected (NC, F32) GEMM")
    assert (fc.count, fc.avg_ms, fc.percent) == (1, 0.41, 11.081)
    assert run.init_profile.run_order[0].mem_kb == 2100.0
    assert run.init_profile.timings.curr_ms == pytest.approx(5.63)


def test_new_format_variants_agree():
    """The same run through INFO:, logcat threadtime and tab-less copies gives the same tables and timings."""
    runs = [parse_benchmark_output(fixture(n)) for n in NEW_FORMAT_FILES]
    for other in runs[1:]:
        assert other.op_profile == runs[0].op_profile
        assert other.init_profile == runs[0].init_profile
        assert other.inference_stat == runs[0].inference_stat


def test_linux_memory_status_block():
    run = parse_benchmark_output(fixture("new_info_xnnpack_percentiles.txt"))
    assert (run.vmrss_mb, run.rss_anon_mb, run.rss_file_shmem_mb) == (31.0, 18.0, 13.0)
    assert (run.memory_init_mb, run.memory_overall_mb) == pytest.approx((12.0352, 21.4883))


def test_logcat_tag_prefix_old_tables_and_warning_line():
    run = parse_benchmark_output(fixture("logcat_tag_tf24_old_tables.txt"))
    assert (run.inference_avg_ms, run.inference_count, run.warmup_avg_ms) == pytest.approx((2.31866, 431, 2.3675))
    assert run.memory_line == "peak" and run.peak_memory_mb == pytest.approx(9.89453)
    assert run.op_profile.table_format == "old"
    conv = run.op_profile.run_order[0]
    assert conv.name == "[model/conv1/Conv2D, model/conv1/BiasAdd]:0" and conv.start_ms == 0.0
    assert run.op_profile.by_type[0].node_type == "TRANSPOSE" and run.op_profile.by_type[0].times_called == 49
    assert run.warnings == ["Attempting to use a delegate that only supports static-sized tensors with a graph that "
                            "has dynamic-sized tensors."]


def test_logcat_brief_prefix_vmrss_fallback():
    run = parse_benchmark_output(fixture("logcat_brief_vmrss_only.txt"))
    assert (run.inference_avg_ms, run.inference_count, run.first_inference_ms) == pytest.approx((12.06, 83, 14.0))
    assert (run.peak_memory_mb, run.peak_memory_source) == (44.0, "vmrss_at_exit")
    assert run.rss_anon_mb == 30.0


def test_scientific_notation_and_count_1():
    run = parse_benchmark_output(fixture("sci_notation_count1.txt"))
    w = run.warmup_stat
    assert (w.count, w.all_same, w.curr_ms, w.min_ms, w.max_ms, w.std_ms) == (1, True, 12345.7, 12345.7, 12345.7, 0.0)
    assert (run.inference_avg_ms, run.inference_std_ms) == pytest.approx((11850.0, 110.0))
    assert (run.inference_min_ms, run.inference_max_ms) == pytest.approx((11700.0, 12000.0))
    assert (run.model_size_mb, run.init_ms, run.memory_overall_mb) == pytest.approx((21.0, 150.0, 250.0))


def test_all_same_and_percentiles_on_short_stat_lines():
    run = parse_benchmark_output(fixture("all_same_count0.txt"))
    assert run.warmup_stat.count == 3 and run.warmup_stat.curr_ms == pytest.approx(0.007)
    s = run.inference_stat
    assert (s.count, s.all_same, s.std_ms) == (5, True, 0.0)
    assert (s.avg_ms, s.median_ms, s.p95_ms) == pytest.approx((0.006, 0.006, 0.006))


def test_parse_stat_forms():
    assert parse_stat("count=0").count == 0 and parse_stat("count=0").avg_ms is None
    s = parse_stat("count=4 first=1e+03 curr=2000 min=1000 max=3000 avg=2.0e3 std=707 p5=1000 median=2000 p95=3000")
    assert (s.first_ms, s.avg_ms, s.std_ms, s.p95_ms, s.all_same) == (1.0, 2.0, 0.707, 3.0, False)


def test_csv_tables_with_commas_in_types_and_names():
    run = parse_benchmark_output(fixture("csv_tables.txt"))
    prof = run.op_profile
    assert prof.table_format == "csv-new"
    rows = prof.run_order
    assert (rows[0].node_type, rows[0].name) == ("TfLiteXNNPackDelegate", "[conv1, stage2/unit1]:0")
    assert (rows[1].node_type, rows[1].name) == ("Convolution (NHWC, QC8) GEMM",
                                                 "Delegate/Convolution (NHWC, QC8) GEMM:1")
    assert rows[2].avg_ms == pytest.approx(6.5e-05) and rows[2].percent == pytest.approx(0.00195783)
    assert [t.node_type for t in prof.by_type] == ["TfLiteXNNPackDelegate", "Convolution (NHWC, QC8) GEMM",
                                                   "AVERAGE_POOL_2D", "SOFTMAX"]
    assert prof.by_type[1].avg_ms == 0.405 and prof.nodes_executed == 4


def test_csv_old_tables_and_very_old_average_line():
    run = parse_benchmark_output(fixture("csv_old_tables.txt"))
    assert run.op_profile.table_format == "csv-old"
    assert [(r.node_type, r.start_ms, r.avg_ms) for r in run.op_profile.run_order] == [("CONV_2D", 0.0, 1.2),
                                                                                      ("SOFTMAX", 1.21, 0.8)]
    assert (run.inference_avg_ms, run.warmup_avg_ms, run.init_ms) == pytest.approx((2.01, 2.2, 0.9))


def test_glog_and_tf_core_log_prefixes():
    run = parse_benchmark_output(fixture("glog_prefix.txt"))
    assert run.num_threads == 4 and run.init_ms == pytest.approx(20.1)
    assert (run.inference_avg_ms, run.inference_count) == pytest.approx((29.4, 50))


@pytest.mark.parametrize("name, error, also", [
    ("fail_load_model.txt", "Could not open '/data/local/tmp/missing.tflite'.",
     "Failed to mmap model /data/local/tmp/missing.tflite"),
    ("fail_invoke.txt", "Node number 12 (RESHAPE) failed to invoke.", "Failed to invoke!"),
    ("fail_xnnpack_delegate.txt", "Failed to apply XNNPACK delegate.", "Benchmarking failed."),
    ("fail_allocate_tensors.txt", "Failed to allocate tensors!", "Benchmarking failed."),
    ("fail_unresolved_op.txt", "Node number 3 (FlexErf) failed to prepare.", "Failed to allocate tensors!"),
    ("fail_linker.txt", 'CANNOT LINK EXECUTABLE "/data/local/tmp/benchmark_model": library "libc++_shared.so" '
                        "not found: needed by main executable", None),
])
def test_failure_lines(name, error, also):
    run = parse_benchmark_output(fixture(name))
    assert run.failed and run.error == error
    assert also is None or also in run.errors
    assert run.inference_avg_ms is None


def test_failure_context_lines_are_warnings():
    run = parse_benchmark_output(fixture("fail_invoke.txt"))
    assert any("num_input_elements != num_output_elements" in w for w in run.warnings)


def test_parse_many_on_starting_markers():
    text = fixture("concatenated_two_runs.txt")
    a, b = parse_many(text)
    assert (a.graph, a.inference_avg_ms, a.peak_memory_mb) == ("/data/local/tmp/a_fp32.tflite", 17.08, 16.5)
    assert (b.graph, b.inference_avg_ms, b.inference_count) == ("/data/local/tmp/b_int8.tflite", 12.09, 82)
    assert [(p.nodes_replaced, p.partitions) for p in b.partitions] == [(80, 7)]
    with pytest.raises(UserError, match="2 benchmark_model runs"):
        parse_benchmark_output(text)


@pytest.mark.parametrize("text", ["", "\n\n", "hello world\n", None])
def test_not_benchmark_output(text):
    text = fixture("not_benchmark_output.txt") if text is None else text
    with pytest.raises(UserError, match="does not look like benchmark_model output") as err:
        parse_benchmark_output(text)
    assert err.value.hint and "\n" not in err.value.one_line()


def test_crlf_line_endings():
    run = parse_benchmark_output(fixture("logcat_tag_tf24_old_tables.txt").replace("\n", "\r\n"))
    assert run.inference_count == 431 and len(run.op_profile.run_order) == 3


def test_to_dict_is_json_ready():
    import json

    d = parse_benchmark_output(fixture("new_info_xnnpack_percentiles.txt")).to_dict()
    assert json.loads(json.dumps(d))["op_profile"]["run_order"][1]["node_type"] == "Convolution (NHWC, F32) IGEMM"


# ------------------------------------------------------------------------------------------- bench schema


def test_bench_schema_with_percentile_line():
    run = parse_benchmark_output(fixture("new_info_xnnpack_percentiles.txt"))
    rec = to_bench_schema(run, device="pixel7", model="shufflenet_v1_g3_1.0x", precision="fp32", threads=4)
    assert (rec["runtime"], rec["device"], rec["threads"], rec["runs"]) == ("benchmark_model", "pixel7", 4, 270)
    lat = rec["latency_ms"]
    assert set(lat) == {"p50", "p90", "p99", "mean", "std", "min", "max"}
    assert (lat["p50"], lat["p90"], lat["p99"]) == (pytest.approx(3.69), None, None)
    assert (lat["mean"], lat["min"], lat["max"]) == pytest.approx((3.70107, 3.633, 4.502))
    assert (rec["first_inference_ms"], rec["init_ms"], rec["peak_rss_mb"]) == pytest.approx((6.021, 5.63, 27.1289))
    assert rec["op_profile"][1] == {"op": "Convolution (NHWC, F32) IGEMM",
                                    "name": "Delegate/Convolution (NHWC, F32) IGEMM:0", "avg_ms": 0.398,
                                    "percent": 21.505}
    assert rec["op_summary"][0]["node_type"] == "TfLiteXNNPackDelegate"
    assert any("p95=3.79" in n for n in rec["notes"])


def test_bench_schema_without_percentiles():
    run = parse_benchmark_output(sample("sample_A_old_format_op_profiling.md"))
    rec = to_bench_schema(run, device="riscv-qemu", model="mobilenet_v1", precision="fp32", threads=None)
    assert rec["threads"] == 4  # falls back to what the tool reports
    assert rec["latency_ms"]["p50"] is None and rec["latency_ms"]["mean"] == pytest.approx(2950.34)
    assert any("percentiles are not available" in n for n in rec["notes"])
    assert rec["op_summary"][0] == {"node_type": "CONV_2D", "count": 15, "avg_ms": 2651.853, "percent": 89.897,
                                    "cdf_percent": 89.897, "mem_kb": 0.0, "times_called": 15}


# ------------------------------------------------------------------------------------------- harness script


def test_harness_script_syntax():
    for shell in ("sh", "dash"):
        if shutil.which(shell):
            subprocess.run([shell, "-n", str(SCRIPT)], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", "-s", "sh", str(SCRIPT)], check=True)


def _fake_binary(tmp_path: Path, outputs: dict[str, tuple[Path, int]]) -> Path:
    """A benchmark_model stand-in: prints the file chosen by a substring of --graph, exits with its code."""
    lines = ['#!/bin/sh', f'printf "%s\\n" "$*" >> "{tmp_path}/args.log"', 'case "$*" in']
    for key, (out, rc) in outputs.items():
        lines.append(f'  *{key}*) cat "{out}"; exit {rc} ;;')
    lines += ['esac', 'echo "ERROR: no fake output for $*"', 'exit 99']
    fake = tmp_path / "benchmark_model"
    fake.write_text("\n".join(lines) + "\n")
    fake.chmod(0o755)
    return fake


def _run_script(tmp_path, args, shell="sh", env=None):
    return subprocess.run([shell, str(SCRIPT), *args], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env=env)


@pytest.mark.parametrize("shell", ["sh", "dash"])
def test_harness_end_to_end(tmp_path, shell):
    if not shutil.which(shell):
        pytest.skip(f"{shell} not installed")
    good_out = tmp_path / "good.out"
    good_out.write_text(sample("sample_A_old_format_op_profiling.md").rstrip("\n"))  # no final newline
    fake = _fake_binary(tmp_path, {"good": (good_out, 0), "bad": (FIX / "fail_xnnpack_delegate.txt", 1)})
    for m in ("good.tflite", "bad model.tflite"):
        (tmp_path / m).write_bytes(b"TFL3")
    mask = format(1 << min(os.sched_getaffinity(0)), "x")
    res = _run_script(tmp_path, ["-b", str(fake), "-t", "2", "-c", mask, "-w", "3", "-r", "7", "-p", "-s", "0",
                                 "-o", "out.txt", "good.tflite", "bad model.tflite"], shell=shell)
    assert res.returncode == 1, res.stderr  # one model failed
    args = (tmp_path / "args.log").read_text().splitlines()
    assert args[0] == ("--graph=good.tflite --num_threads=2 --warmup_runs=3 --num_runs=7 "
                       "--report_peak_memory_footprint=true --enable_op_profiling=true")
    good, bad = parse_harness_output((tmp_path / "out.txt").read_text())
    assert (good.model, good.rc, bad.model, bad.rc) == ("good.tflite", 0, "bad model.tflite", 1)
    assert good.settings["threads"] == "2" and good.settings["cpumask"] == mask
    assert good.command.startswith(f"taskset {mask} {fake} --graph=good.tflite")
    assert not good.run.failed and good.run.inference_avg_ms == pytest.approx(2950.34)
    assert good.run.op_profile.by_type[0].avg_ms == 2651.853  # its last line lacked a newline: still parsed
    assert bad.run.failed and bad.run.error == "Failed to apply XNNPACK delegate."
    assert good.warnings == [] and int(good.before["epoch"]) > 0
    cpus = [k for k in good.before if re.fullmatch(r"cpu\d+_governor", k)]
    assert cpus and set(cpus) <= set(good.after)  # recorded before and after (values may be NA in containers)
    cond = good.conditions("before").to_dict()
    assert set(cond) == {"freq_khz", "governor", "temp_c"}
    assert isinstance(compare_conditions(cond, good.conditions("after").to_dict()), list)


def test_harness_without_taskset_falls_back(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("sh", "cat", "head", "tr", "date", "sleep"):
        (bindir / tool).symlink_to(shutil.which(tool))
    fake = _fake_binary(tmp_path, {"m.tflite": (FIX / "logcat_brief_vmrss_only.txt", 0)})
    (tmp_path / "m.tflite").write_bytes(b"TFL3")
    res = _run_script(tmp_path, ["-b", str(fake), "-c", "f0", "m.tflite"], shell=str(bindir / "sh"),
                      env={"PATH": str(bindir)})
    assert res.returncode == 0, res.stderr
    assert "taskset not found" in res.stderr
    [rec] = parse_harness_output(res.stdout)
    assert rec.warnings == ["taskset not found: running unpinned (mask f0 ignored)"]
    assert not rec.command.startswith("taskset") and rec.run.inference_count == 83


@pytest.mark.parametrize("args, message", [
    (["-t", "x", "m.tflite"], "THREADS must be a non-negative integer"),
    (["-c", "zz", "m.tflite"], "CPUMASK must be a hex mask"),
    ([], "no model given"),
    (["missing.tflite"], "model not found: missing.tflite"),
])
def test_harness_usage_errors(tmp_path, args, message):
    fake = _fake_binary(tmp_path, {})
    (tmp_path / "m.tflite").write_bytes(b"TFL3")
    res = _run_script(tmp_path, ["-b", str(fake), *args])
    assert res.returncode == 2 and message in res.stderr
    assert not (tmp_path / "args.log").exists()


def test_harness_conditions_and_truncation():
    text = fixture("harness_synthetic.txt")
    ok, cut = parse_harness_output(text)
    before, after = ok.conditions("before"), ok.conditions("after")
    assert before.freq_khz == {"cpu0": 1800000, "cpu4": 2400000}
    assert before.temp_c == {"zone0:cpu-0-0-usr": 41.5, "zone1:battery": 30.0}
    assert after.temp_c["zone0:cpu-0-0-usr"] == 49.0
    warnings = compare_conditions(before.to_dict(), after.to_dict())
    assert any(w.startswith("cpu4 frequency changed 2400000 -> 1700000") for w in warnings)
    assert any(w.startswith("zone0:cpu-0-0-usr temperature changed 41.5 -> 49.0") for w in warnings)
    assert not any("cpu0" in w or "battery" in w for w in warnings)
    assert cut.rc is None and "no end marker" in cut.warnings[0] and cut.run.failed


def test_harness_nonzero_rc_marks_run_failed():
    text = ("### sdeploy-begin model=x.tflite\n" + fixture("logcat_brief_vmrss_only.txt") +
            "### sdeploy-end model=x.tflite rc=137\n")
    [rec] = parse_harness_output(text)
    assert rec.rc == 137 and rec.run.failed and rec.run.error == "benchmark_model exited with code 137"
    assert rec.run.inference_count == 83  # what it printed before dying is kept


def test_harness_parser_rejects_plain_output():
    with pytest.raises(UserError, match="run_benchmarks.sh output"):
        parse_harness_output(fixture("concatenated_two_runs.txt"))


def test_error_line_in_a_completed_run_is_a_warning_not_a_failure():
    """The tool prints its timings only after a successful benchmark; a delegate that silently fell back to CPU
    must stay visible, as a warning, without throwing the numbers away."""
    run = parse_benchmark_output(fixture("delegate_failed_run_completed.txt"))
    assert not run.failed and run.error is None
    assert run.inference_avg_ms == pytest.approx(5.02) and run.inference_count == 200
    assert run.warnings == ["error line in a completed run: Failed to apply NNAPI delegate."]


def test_stdout_tables_before_stderr_log_stay_one_run():
    """harness.py joins stdout + stderr: the profiling tables can come before `STARTING!`."""
    text = sample("sample_A_old_format_op_profiling.md")
    cut = text.index("Profiling Info for Benchmark Initialization:")
    run = parse_benchmark_output(text[cut:] + "\n" + text[:cut])
    assert run.inference_avg_ms == pytest.approx(2950.34)
    assert run.op_profile.by_type[0].avg_ms == 2651.853 and run.init_profile.run_order[0].avg_ms == 1.356


def test_failure_in_regular_runs_keeps_the_warmup_stat_as_warmup():
    run = parse_benchmark_output(fixture("fail_during_regular_runs.txt"))
    assert run.failed and run.error == "Node number 40 (CONV_2D) failed to invoke."
    assert run.warmup_stat.count == 25 and run.warmup_avg_ms == pytest.approx(20.4)
    assert run.inference_stat is None and run.inference_avg_ms is None and run.inference_count is None
