"""Every bad input a user was seen to try: one line (what, where, how to fix), the right exit code (2 input,
3 device), no traceback, and nothing half-written left behind. Each case runs the real `sdeploy` CLI in a child
process, as a user's shell would."""
from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import default_sigint

TINY = "shufflenet_v1_g3_0.25x"


@pytest.fixture
def sdeploy(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PYTHONWARNINGS": "ignore"}

    def run(*args, timeout=300, cwd=None):
        argv = [sys.executable, "-c", "from shufflenet_deploy.cli import run; run()", *map(str, args)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd or tmp_path)
    return run


def one_error(proc, code: int, *needles: str) -> str:
    """The run failed with `code`, printed no traceback, and its last stderr line is the error naming needles."""
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), proc.stderr[-2000:]
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("."))


def _tmpfs(folder: Path, options: str):
    """Mount a tmpfs on `folder` (root only; skipped where the machine forbids it), unmount it afterwards."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def ro_dir(tmp_path):
    """A read-only folder that even root cannot write (a read-only tmpfs mount)."""
    yield from _tmpfs(tmp_path / "ro", "ro,size=1m")


@pytest.fixture
def tiny_fs(tmp_path):
    """A 3 MB filesystem, to fill mid-export."""
    yield from _tmpfs(tmp_path / "small", "size=3m")


# ------------------------------------------------------------------------------------------ export: refused early
@pytest.mark.parametrize("args,needles", [
    (["--calib-count", "0"], ["--calib-count", "at least 1"]),
    (["--calib-count", "-1"], ["--calib-count"]),
    (["--calib-count", "5"], ["too few images to calibrate int8"]),
    (["--input-size", "0"], ["--input-size", "too small"]),
    (["--input-size", "-5"], ["--input-size", "too small"]),
    (["--input-size", "100000"], ["too large", "would not fit in memory"]),
    (["--input-size", "abc"], ["bad --input-size"]),
    (["--precision", "int4"], ["unknown precision"]),
    (["--precision", "fp32", "--onnx-int8"], ["--onnx-int8", "add int8 to --precision"]),
])
def test_export_refuses_bad_options_before_anything_is_written(sdeploy, tmp_path, args, needles):
    proc = sdeploy("export", TINY, "-o", tmp_path / "out", *args)
    one_error(proc, 2, *needles)
    assert not (tmp_path / "out").exists() and hidden(tmp_path) == []


def test_export_onto_a_file_or_device_is_refused_even_with_force(sdeploy, tmp_path):
    precious = tmp_path / "notes.txt"
    precious.write_text("mine")
    for target in (precious, Path("/dev/full")):
        for force in ([], ["--force"]):
            line = one_error(sdeploy("export", TINY, "-o", target, *force), 2, str(target), "is not a folder")
            assert "--force" not in line  # never suggest replacing a user's file
    assert precious.read_text() == "mine" and hidden(tmp_path) == []


def test_force_replaces_only_an_earlier_export(sdeploy, tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "thesis.tex").write_text("years of work")
    one_error(sdeploy("export", TINY, "-o", user, "--force"), 2, "not written by `sdeploy export`")
    assert (user / "thesis.tex").read_text() == "years of work"
    one_error(sdeploy("export", TINY, "-o", user), 2, "already exists", "--force")

    # a web app's folder that merely holds a file named manifest.json (and its .git): not ours either
    app = tmp_path / "webapp"
    (app / ".git").mkdir(parents=True)
    (app / "manifest.json").write_text('{"name": "My PWA", "start_url": "/"}')
    one_error(sdeploy("export", TINY, "-o", app, "--force"), 2, "not written by `sdeploy export`", "schema")
    # our schema, but beside files no export writes
    (app / "manifest.json").write_text('{"schema": "sdeploy-export/1", "model": "x"}')
    one_error(sdeploy("export", TINY, "-o", app, "--force"), 2, "not written by `sdeploy export`", "'.git'")
    assert (app / ".git").is_dir() and (app / "manifest.json").exists()


def test_export_into_proc_is_one_line(sdeploy):
    one_error(sdeploy("export", TINY, "-o", "/proc/sdeploy-x"), 2, "/proc")


def test_export_into_a_read_only_folder(sdeploy, ro_dir):
    one_error(sdeploy("export", TINY, "-o", ro_dir / "out"), 2, "not writable")


def test_checkpoint_problems_are_named(sdeploy, tmp_path):
    import torch

    from shufflenet_deploy.checkpoints import load_model, save_checkpoint

    folder = tmp_path / "ckpt_dir"
    folder.mkdir()
    one_error(sdeploy("export", "--checkpoint", folder, "-o", tmp_path / "o"), 2, "is a folder")
    one_error(sdeploy("export", "--checkpoint", tmp_path / "nope.pt", "-o", tmp_path / "o"), 2, "does not exist")

    model = load_model(TINY, num_classes=10)
    good = save_checkpoint(tmp_path / "good.pt", model, model.sdeploy_meta.with_input_size(32))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    one_error(sdeploy("export", "--checkpoint", truncated, "-o", tmp_path / "o"), 2, "truncated")

    obj = torch.load(good, weights_only=True)
    obj["meta"]["input_size"] = -7
    torch.save(obj, tmp_path / "bad_meta.pt")
    one_error(sdeploy("export", "--checkpoint", tmp_path / "bad_meta.pt", "-o", tmp_path / "o"), 2,
              "damaged sdeploy checkpoint", "input size")

    state = {k: v for k, v in model.state_dict().items() if "classifier" not in k}
    torch.save(state, tmp_path / "partial.pt")
    line = one_error(sdeploy("export", TINY, "--checkpoint", tmp_path / "partial.pt", "-o", tmp_path / "o"), 2,
                     "missing keys", "classifier")
    assert "check the model name" not in line and "partial or damaged" in line
    assert not (tmp_path / "o").exists()


def test_val_class_mismatch_is_found_before_the_conversion(tmp_path):
    from shufflenet_deploy.data.digits import ensure_digits
    from shufflenet_deploy.errors import UserError
    from shufflenet_deploy.export.pipeline import ExportRequest, export

    val = tmp_path / "val"
    shutil.copytree(ensure_digits(32) / "val", val)
    shutil.copytree(val / "3", val / "eleven")  # one class folder too many
    messages = []
    with pytest.raises(UserError) as err:
        export(ExportRequest(model=TINY, input_size=32, precisions=("fp32",), val=val, outdir=tmp_path / "o",
                             model_options={"num_classes": 10}), progress=messages.append)
    assert "11 class folders" in err.value.one_line() and "10 outputs" in err.value.one_line()
    assert not any("onnx2tf" in m for m in messages) and not (tmp_path / "o").exists()


def _bomb_png(path: Path, side: int = 20000) -> None:
    """A tiny PNG whose header claims side x side pixels (what PIL's decompression-bomb guard looks at)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_a_decompression_bomb_among_calibration_images_is_skipped(tmp_path):
    from PIL import Image

    from shufflenet_deploy.data.folders import scan_images

    folder = tmp_path / "calib"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40), (i * 50, 0, 0)).save(folder / f"ok{i}.png")
    _bomb_png(folder / "huge.png")
    found = scan_images(folder, min_size=32)
    assert len(found) == 3 and found.skipped[0][0] == "huge.png" and "too large" in found.skipped[0][1]


def test_stale_work_folders_of_dead_runs_are_removed_and_live_ones_kept(sdeploy, tmp_path):
    dead = tmp_path / ".out.tmp-999999-abcd"
    dead.mkdir()
    (dead / "model.onnx").write_bytes(b"x" * 1000)
    live = tmp_path / f".out.tmp-{os.getppid()}-efgh"  # pytest's parent: alive
    live.mkdir()
    one_error(sdeploy("export", "no_such_model", "-o", tmp_path / "out"), 2, "no_such_model")
    assert not dead.exists() and live.exists()


@pytest.mark.slow
def test_disk_full_mid_export_is_one_line_and_leaves_nothing(sdeploy, tiny_fs):
    proc = sdeploy("export", TINY, "--input-size", "32", "--precision", "fp32", "-o", tiny_fs / "out")
    one_error(proc, 2, "full")
    assert list(tiny_fs.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_export_leaves_no_work_folder_and_no_worker(tmp_path, sig, code):
    """Signalled while its onnx2tf worker converts: exit 128+N, no temp folder, no output, no worker left. The
    worker is found by a mark in its environment (it runs in a session of its own, and other tests' workers may
    run beside it); the signal goes the moment it is seen working, since a warm worker converts a tiny model in
    about a second. The child gets SIGINT's default (helpers.default_sigint: a suite run in the background
    inherits it ignored, and the export then finished with exit 0)."""
    mark = str(tmp_path)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "SDEPLOY_TEST_MARK": mark}
    argv = [sys.executable, "-c", "from shufflenet_deploy.cli import run; run()", "export", TINY, "--input-size",
            "64", "--precision", "fp32", "-o", str(tmp_path / "out")]
    child = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=default_sigint)
    deadline = time.monotonic() + 120

    def converting():  # the spec is written just before the job goes to the worker (export/tflite_convert.py)
        spec = any((d / "work" / "spec.json").exists() for d in tmp_path.glob(".out.tmp-*"))
        return spec and [p for p in marked(mark) if p != child.pid]

    while not converting():
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.02)
    child.send_signal(sig)
    out, err = child.communicate(timeout=120)
    assert child.returncode == code, err[-2000:]
    assert "Traceback" not in err and ("terminated" in err or "interrupted" in err)
    time.sleep(1.0)
    assert hidden(tmp_path) == [] and not (tmp_path / "out").exists()
    assert marked(mark) == [], "the onnx2tf worker outlived sdeploy"


def marked(mark: str) -> list[int]:
    """Live processes whose environment holds SDEPLOY_TEST_MARK=MARK."""
    needle = f"SDEPLOY_TEST_MARK={mark}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes() + b"\0"
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if needle in environ and state != "Z":
                found.append(int(entry.name))
    return found


# ----------------------------------------------------------------------------------------------- data and train
def test_data_digits_never_destroys_a_users_folder(sdeploy, tmp_path):
    user = tmp_path / "d"
    user.mkdir()
    (user / "keep.txt").write_text("mine")
    one_error(sdeploy("data", "digits", "-o", user), 2, "already exists", "--force")
    one_error(sdeploy("data", "digits", "-o", user, "--force"), 2, "not a digits folder sdeploy wrote")
    assert (user / "keep.txt").read_text() == "mine"
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    one_error(sdeploy("data", "digits", "-o", afile), 2, "is not a folder")
    for size in ("0", "-3"):
        one_error(sdeploy("data", "digits", "-o", tmp_path / "new", "--size", size), 2, "--size")
    ours = tmp_path / "ours"
    assert sdeploy("data", "digits", "-o", ours, "--size", "16").returncode == 0
    assert sdeploy("data", "digits", "-o", ours, "--size", "16", "--force").returncode == 0
    assert hidden(tmp_path) == []


def test_data_digits_into_a_read_only_folder(sdeploy, ro_dir):
    one_error(sdeploy("data", "digits", "-o", ro_dir / "d"), 2, str(ro_dir))


@pytest.mark.parametrize("args,needle", [
    (["--epochs", "0"], "--epochs"), (["--batch", "0"], "--batch"), (["--batch", "-5"], "--batch"),
    (["--lr", "-0.5"], "--lr"), (["--input-size", "0"], "--input-size"), (["--max-steps", "0"], "--max-steps"),
])
def test_train_refuses_bad_numbers_before_training(sdeploy, tmp_path, args, needle):
    start = time.monotonic()
    one_error(sdeploy("train", TINY, "--data", "digits", "-o", tmp_path / "m.pt", *args), 2, needle)
    assert time.monotonic() - start < 60 and not (tmp_path / "m.pt").exists()


def test_train_output_that_is_a_folder_is_refused_up_front(sdeploy, tmp_path):
    (tmp_path / "out").mkdir()
    one_error(sdeploy("train", TINY, "--data", "digits", "-o", tmp_path / "out"), 2, "is a folder")


def test_train_on_one_class_is_refused(sdeploy, tmp_path):
    from PIL import Image

    d = tmp_path / "one" / "cat"
    d.mkdir(parents=True)
    for i in range(20):
        Image.new("RGB", (32, 32), (i, i, i)).save(d / f"{i}.png")
    one_error(sdeploy("train", TINY, "--data", tmp_path / "one", "--input-size", "32", "-o", tmp_path / "m.pt"), 2,
              "1 class", "at least two")


# ---------------------------------------------------------------------------------------------- eval and report
@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    from shufflenet_deploy.data.digits import ensure_digits
    from shufflenet_deploy.export.pipeline import ExportRequest, export

    out = tmp_path_factory.mktemp("exp") / "export"
    export(ExportRequest(model=TINY, input_size=32, precisions=("fp32",), verify_count=4, outdir=out,
                         model_options={"num_classes": 10}, calib=ensure_digits(32) / "calib"))
    return out


@pytest.mark.slow
def test_eval_of_damaged_export_files(sdeploy, tmp_path, small_export):
    for name in ("model_fp32.tflite", "model.onnx"):
        copy = tmp_path / name.replace(".", "_")
        shutil.copytree(small_export, copy)
        (copy / name).write_bytes(b"garbage")
        one_error(sdeploy("eval", copy, "--data", "digits"), 2, name, "no longer matches its manifest")
        if name.endswith(".tflite"):  # bench measures the TFLite files only
            one_error(sdeploy("bench", copy, "--device", "local", "--runs", "2"), 2, "no longer matches")
    loose = tmp_path / "loose"
    shutil.copytree(small_export, loose)
    (loose / "model_fp32.tflite").write_bytes(b"garbage")
    one_error(sdeploy("eval", loose / "model_fp32.tflite", "--data", "digits"), 2, "cannot be run as a TFLite")
    cut = tmp_path / "cut"
    shutil.copytree(small_export, cut)
    (cut / "manifest.json").write_text((cut / "manifest.json").read_text()[:200])
    one_error(sdeploy("eval", cut, "--data", "digits"), 2, "manifest.json is not valid JSON")
    one_error(sdeploy("bench", cut, "--device", "local"), 2, "manifest.json is not valid JSON")
    one_error(sdeploy("eval", small_export, "--data", "digits", "--input-size", "0"), 2, "--input-size")


def test_eval_class_mismatch_names_the_difference(tmp_path):
    from shufflenet_deploy.data.folders import scan_image_folder
    from shufflenet_deploy.errors import UserError
    from shufflenet_deploy.data.folders import check_classes
    from PIL import Image

    for c in ("cat", "dog", "eel"):
        (tmp_path / c).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / c / "a.png")
    with pytest.raises(UserError) as err:
        check_classes(scan_image_folder(tmp_path), ["cat", "dog"], "model")
    assert "extra class folder(s) eel" in err.value.one_line()


def test_report_of_an_empty_results_list_and_a_truncated_predictor(sdeploy, tmp_path):
    (tmp_path / "bench.json").write_text("[]")
    one_error(sdeploy("report", tmp_path / "bench.json", "-o", tmp_path / "r"), 2, "no benchmark rows")
    (tmp_path / "p.json").write_text('{"schema": "sdeploy-predictor/2", "lookup": {')
    one_error(sdeploy("predict", TINY, "--device", "local", "--predictor", tmp_path / "p.json"), 2,
              "is not valid JSON")


# --------------------------------------------------------------------------------------------------------- bench
def test_bench_input_errors_are_exit_2_and_checked_here(sdeploy, tmp_path, tiny_tflite):
    garbage = tmp_path / "junk.tflite"
    garbage.write_bytes(b"definitely not a flatbuffer" * 10)
    one_error(sdeploy("bench", garbage, "--device", "local"), 2, "is not a TFLite model")
    model = tiny_tflite("fp32")
    (tmp_path / "in.npy").write_text("not numpy")
    one_error(sdeploy("bench", model, "--device", "local", "--input", tmp_path / "in.npy"), 2, "not a .npy")
    np.save(tmp_path / "wrong.npy", np.zeros((5, 5, 3), np.float32))
    one_error(sdeploy("bench", model, "--device", "local", "--input", tmp_path / "wrong.npy"), 2, "has shape [5, 5, 3]")
    one_error(sdeploy("bench", model, "--device", "local", "--threads", "100000", "-o", tmp_path / "b"), 2,
              "--threads 100000")
    assert not (tmp_path / "b").exists()


def test_bench_results_folder_is_checked_before_the_benchmark(sdeploy, ro_dir, tiny_tflite):
    start = time.monotonic()
    one_error(sdeploy("bench", tiny_tflite("fp32"), "--device", "local", "--runs", "2000", "--min-seconds", "60",
                      "-o", ro_dir / "b"), 2, "not writable")
    assert time.monotonic() - start < 30  # refused before the 60 s benchmark, not after it


@pytest.mark.parametrize("field,value", [("host", "-oProxyCommand=touch /tmp/x"), ("host", "pi;reboot"),
                                         ("user", "-l"), ("user", "pi;rm")])
def test_ssh_host_or_user_that_is_not_a_name_is_an_input_error(sdeploy, tmp_path, tiny_tflite, field, value):
    devices = tmp_path / "devices.toml"
    base = {"transport": "ssh", "host": "127.0.0.1", field: value}
    devices.write_text("[devices.box]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in base.items()))
    line = one_error(sdeploy("bench", tiny_tflite("fp32"), "--device", "box", "--devices", devices), 2,
                     f"{field} {value!r}", "not a valid")
    assert "connection" not in line


@pytest.mark.slow
def test_an_interrupted_local_bench_leaves_no_temp_folder_and_no_runner(tmp_path, tiny_tflite):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "TMPDIR": str(tmp)}
    argv = [sys.executable, "-c", "from shufflenet_deploy.cli import run; run()", "bench", str(tiny_tflite("fp32")),
            "--device", "local", "--runs", "100000000", "--min-seconds", "600", "-o", str(tmp_path / "b")]
    child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp.glob("sdeploy-*/sdeploy_runner.py")):
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.1)
    time.sleep(2.0)  # the runner is timing
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 143 and "Traceback" not in err, err[-2000:]
    assert list(tmp.iterdir()) == []
    runners = subprocess.run(["pgrep", "-f", f"{tmp}/sdeploy-"], capture_output=True, text=True).stdout.split()
    assert runners == []


def test_a_cache_that_is_a_file_is_found_before_anything_is_measured(tmp_path, tiny_tflite):
    """SDEPLOY_CACHE pointing at a file used to fail when the peak was cached, after every measurement."""
    (tmp_path / "cachefile").write_text("not a folder")
    env = {**os.environ, "SDEPLOY_CACHE": str(tmp_path / "cachefile"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    argv = [sys.executable, "-c", "from shufflenet_deploy.cli import run; run()", "bench", str(tiny_tflite("fp32")),
            "--device", "local", "--runs", "2", "-o", str(tmp_path / "b")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    one_error(proc, 2, "SDEPLOY_CACHE=", "is not a folder")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("where", ["bench.json", "manifest.json", "--parse", "--input", "--devices"])
def test_a_named_pipe_where_a_document_goes_is_one_line_not_a_hang(sdeploy, tmp_path, tiny_tflite, where):
    pipe = tmp_path / "pipe"
    if where == "bench.json":
        (tmp_path / "r").mkdir()
        os.mkfifo(tmp_path / "r" / "bench.json")
        argv = ["report", tmp_path / "r", "-o", tmp_path / "out"]
    elif where == "manifest.json":
        (tmp_path / "e").mkdir()
        os.mkfifo(tmp_path / "e" / "manifest.json")
        argv = ["bench", tmp_path / "e", "--device", "local"]
    else:
        os.mkfifo(pipe)
        model = tiny_tflite("fp32")
        argv = {"--parse": ["bench", "--parse", pipe, "--device", "pixel", "-o", tmp_path / "p"],
                "--input": ["bench", model, "--device", "local", "--input", pipe, "-o", tmp_path / "i"],
                "--devices": ["bench", model, "--device", "local", "--devices", pipe, "-o", tmp_path / "d"]}[where]
    one_error(sdeploy(*argv, timeout=60), 2, "not a regular file")


# ------------------------------------------------------------------------ hostile documents (scripts/hostile_sweep.py)
DEEP_JSON = "[" * 200000 + "]" * 200000
MINIMAL_BENCH = {"schema": "sdeploy-bench/1", "results": [
    {"device": "local", "model": "m", "precision": "fp32", "threads": 1, "latency_ms": {"p50": 1.0}}]}
PREDICTOR = {"schema": "sdeploy-predictor/3", "lookup": {}, "regression": {"fp32|*|*": {"coef": [1, 0, 0, 0]}},
             "correction": {"fp32": {"a": 1.0}}}


@pytest.mark.parametrize("where", ["bench.json", "manifest.json", "predictor", "devices.toml"])
def test_a_document_nested_thousands_deep_is_one_line(sdeploy, tmp_path, where):
    """json and tomllib recurse per level: 200000 levels were a RecursionError traceback."""
    if where == "bench.json":
        (tmp_path / "bench.json").write_text(DEEP_JSON)
        argv, needle = ["compare", tmp_path / "bench.json", tmp_path / "bench.json"], "nests too deeply"
    elif where == "manifest.json":
        (tmp_path / "e").mkdir()
        (tmp_path / "e" / "manifest.json").write_text(DEEP_JSON)
        argv, needle = ["bench", tmp_path / "e", "--device", "local"], "nests too deeply"
    elif where == "predictor":
        (tmp_path / "p.json").write_text(DEEP_JSON)
        argv, needle = ["predict", TINY, "--device", "local", "--predictor", tmp_path / "p.json"], "nests too deeply"
    else:
        (tmp_path / "d.toml").write_text("x = " + DEEP_JSON + "\n")
        argv, needle = ["devices", "--devices", tmp_path / "d.toml"], "nested too deeply"
    one_error(sdeploy(*argv, timeout=120), 2, needle)


@pytest.mark.parametrize("block,value,needle", [
    ("op_times", {"ops": "x"}, "op_times: ops"),
    ("op_times", {"ops": [{"op": "CONV_2D", "time_ms": "1"}]}, "ops[0]: time_ms"),
    ("device_facts", {"clusters": "x"}, "device_facts: clusters"),
    ("device_facts", {"clusters": [{"name": "A53", "cpus": ["x"]}]}, "clusters[0]: cpus"),
    ("model_info", {"input_size": "y"}, "model_info: input_size"),
    ("model_info", {"key": "m", "name": "m", "macs": {"total": -5}}, "macs: total"),
    ("conditions", {"before": "x"}, "conditions: before"),
    ("doc.peak", [{"threads": 1, "precision": "fp32", "device": 5}], "peak[0]: device"),
    ("doc.models", {"k": {"precisions": {"fp32": {"ops": "x"}}}}, "ops is 'x'"),
    ("doc.models", {"k": {"flops_by_group": {"dense_conv": "x"}}}, "flops_by_group: dense_conv"),
    ("doc.interleaved", {"latency_ms": "x"}, "interleaved: latency_ms"),
])
def test_a_damaged_block_inside_bench_json_is_one_line_naming_it(sdeploy, tmp_path, block, value, needle):
    """The blocks later stages read field by field (report, predictor fit, gap lines) were checked only as
    objects: a string where a list goes was an AttributeError traceback in the report."""
    doc = json.loads(json.dumps(MINIMAL_BENCH))
    if block.startswith("doc."):
        doc[block[4:]] = value
    else:
        doc["results"][0][block] = value
    (tmp_path / "bench.json").write_text(json.dumps(doc))
    one_error(sdeploy("compare", tmp_path / "bench.json", tmp_path / "bench.json"), 2, needle)
    one_error(sdeploy("report", tmp_path / "bench.json", "-o", tmp_path / "r"), 2, needle)
    assert not (tmp_path / "r").exists() and hidden(tmp_path) == []


@pytest.mark.parametrize("line,needle", [
    ('affinity = "0-1000000000"', "is not a range of CPUs"),  # was a 17 GB set of CPU numbers
    (f'affinity = "0x{"f" * 100000}"', "names CPUs beyond"),
    ("python = \"python3 'oops\"", "python must be a command shlex can split"),  # was shlex's ValueError
    ('python = ""', "python must be a command"),  # was silently the default interpreter
])
def test_devices_toml_values_that_cannot_be_used_are_refused_when_read(sdeploy, tmp_path, line, needle):
    (tmp_path / "d.toml").write_text(f'[devices.box]\ntransport = "local"\n{line}\n')
    one_error(sdeploy("devices", "--devices", tmp_path / "d.toml", timeout=60), 2, needle)


@pytest.mark.parametrize("name", ["../../../escaped", "a/b", "<img src=x onerror=alert(1)>", "[/x]", "", "-rf"])
def test_a_device_name_must_be_usable_as_a_folder_name(sdeploy, tmp_path, name):
    """A device's name becomes ARTIFACT/bench-DEVICE, OUT/DEVICE/ and a cache file: "../../../escaped" wrote the
    results three folders up."""
    (tmp_path / "d.toml").write_text(f"[devices.{json.dumps(name)}]\ntransport = \"local\"\n")
    one_error(sdeploy("devices", "--devices", tmp_path / "d.toml"), 2, "is not a valid name")


def test_rich_markup_in_a_users_string_is_printed_as_it_is(sdeploy, tmp_path):
    """rich parsed a `[/x]` in a device's python command (and in model and device names) as markup: MarkupError."""
    (tmp_path / "d.toml").write_text('[devices.box]\ntransport = "local"\npython = "[/x] python3"\n')
    proc = sdeploy("devices", "--devices", tmp_path / "d.toml")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "[/x] python3" in proc.stdout


def test_a_line_break_in_a_path_cannot_forge_a_second_error_line(sdeploy, tmp_path):
    line = one_error(sdeploy("devices", "--devices", tmp_path / "a\nerror: all fine.toml"), 2, "not found")
    assert "a\\nerror: all fine.toml" in line


def test_local_device_workdir_that_takes_no_folder_is_one_line(sdeploy, tmp_path, tiny_tflite):
    (tmp_path / "d.toml").write_text('[devices.box]\ntransport = "local"\nworkdir = "/proc"\n')
    one_error(sdeploy("bench", tiny_tflite("fp32"), "--device", "box", "--devices", tmp_path / "d.toml", "--no-peak",
                      "-o", tmp_path / "b"), 2, "cannot create a work dir in /proc")


def test_bench_parse_refuses_what_it_cannot_record_and_keeps_a_users_csv(sdeploy, tmp_path):
    from helpers import FIXTURES

    log = FIXTURES / "benchmark_model" / "new_info_xnnpack_percentiles.txt"
    one_error(sdeploy("bench", "--parse", log, "--device", "pixel", "--model", "m", "--precision", "int4", "-o",
                      tmp_path / "a"), 2, "--precision 'int4'")
    huge = tmp_path / "huge.txt"  # a 5000-digit count was float inf, then int(inf): OverflowError
    huge.write_text(log.read_text().replace("count=270 ", "count=" + "9" * 5000 + " "))
    proc = sdeploy("bench", "--parse", huge, "--device", "pixel", "--model", "m", "-o", tmp_path / "h")
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "bench.csv").write_text("my,own\nspreadsheet,1\n")  # no bench.json: not ours, never overwritten
    one_error(sdeploy("bench", "--parse", log, "--device", "pixel", "--model", "m", "-o", mine, "--force"), 2,
              "bench.csv is in the way")
    assert (mine / "bench.csv").read_text() == "my,own\nspreadsheet,1\n" and not (mine / "bench.json").exists()


def test_eval_of_a_named_pipe_is_one_line_not_a_hang(sdeploy, tmp_path):
    os.mkfifo(tmp_path / "model.pt")
    one_error(sdeploy("eval", tmp_path / "model.pt", "--data", "digits", timeout=60), 2, "not a regular file")


def test_a_broken_manifest_link_is_not_taken_for_no_manifest(sdeploy, tmp_path, tiny_tflite):
    folder = tmp_path / "e"
    folder.mkdir()
    shutil.copy(tiny_tflite("fp32"), folder / "model_fp32.tflite")
    (folder / "manifest.json").symlink_to(tmp_path / "gone.json")
    one_error(sdeploy("bench", folder, "--device", "local", "-o", tmp_path / "b"), 2, "broken symbolic link")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("table,needle", [
    ({"rows": "x"}, "rows is 'x', expected a list"),
    ({"rows": [1]}, "rows[0] is a number"),
    ({"rows": [{"depth": 0, "op": "CONV_2D", "tensor": "t", "shape": [1, 4, 4, 8], "scale": 0.1, "zero_point": 0,
                "matched": True, "snr_db": "x"}]}, "rows[0]: snr_db"),
])
def test_quant_report_of_a_damaged_layer_table_is_one_line(sdeploy, tmp_path, table, needle):
    """Manifest checks int8_layers only as an object; quant-report read its rows field by field (AttributeError)."""
    folder = tmp_path / "e"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"schema": "sdeploy-export/1", "model": "m", "input_size": 32,
                                                      "artifacts": {}, "int8_layers": table}))
    one_error(sdeploy("quant-report", folder, "-o", tmp_path / "q"), 2, needle)
    assert not (tmp_path / "q").exists()


def test_compare_markdown_that_cannot_be_written_and_a_sweep_of_nothing_are_one_line(sdeploy, tmp_path):
    doc = json.loads(json.dumps(MINIMAL_BENCH))
    doc["results"][0]["times_ms"] = [1.0, 1.1, 0.9, 1.0, 1.05]
    (tmp_path / "bench.json").write_text(json.dumps(doc))
    for target in ("/dev/full", tmp_path / "no" / "such" / "c.md"):  # were OSError tracebacks after the table
        one_error(sdeploy("compare", tmp_path / "bench.json", tmp_path / "bench.json", "--allow-mixed",
                          "--markdown", target), 2, "cannot write --markdown")
    # a --models name that is no model was skipped, and the sweep said "0 results" with exit 0
    one_error(sdeploy("sweep", "--device", "local", "--models", "<img src=x>", "--no-peak", "-o", tmp_path / "s"), 2,
              "nothing was measured")
