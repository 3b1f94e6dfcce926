"""CI's proof of the ARM path with the bundled *trained* model on real images (issue 7).

test_aarch64.py proves the aarch64 target with a tiny model and random input; here the bundled g3 0.5x model is
exported for real and its int8 outputs on the bundled digits val images must be bit-identical on aarch64 (qemu,
Cortex-A76 pinned) and x86 — through the CI script the GitHub workflow uses (scripts/ci_int8_outputs.py) and
through the product path (`sdeploy bench --device NAME --devices FILE --input --save-outputs` over SSH into the
aarch64 sshd). Trained weights matter: random-init networks make every comparison look perfect.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from helpers import REPO, SDEPLOY, run
from servers import aarch64 as a64

pytestmark = [pytest.mark.aarch64, pytest.mark.slow]

CI_SCRIPT = REPO / "scripts" / "ci_int8_outputs.py"


def _run(argv, timeout):
    return run(argv, timeout=timeout, cwd=REPO)


@pytest.fixture(scope="module")
def g3_export(shared_export):
    """`sdeploy export` of the bundled trained g3 model (fp32 + int8): the session's shared export."""
    out = shared_export("g3").path
    assert (out / "model_int8.tflite").is_file() and (out / "model_fp32.tflite").is_file()
    return out


@pytest.fixture(scope="module")
def x86_outputs(g3_export, tmp_path_factory):
    """The x86 reference: raw int8 outputs of every digits val image (the CI script's --export mode)."""
    out = tmp_path_factory.mktemp("ci_arm") / "outputs-x86_64.npz"
    done = _run([sys.executable, str(CI_SCRIPT), "--export", str(g3_export), "-o", str(out)], timeout=300)
    assert done.returncode == 0, done.stderr
    with np.load(out) as z:
        meta = json.loads(str(z["meta"]))
        assert meta["machine"] == "x86_64" and z["outputs"].dtype == np.int8
        assert len(z["names"]) >= 100                 # the whole val split, every class
        assert len(set(z["labels"].tolist())) == 10
    return out


def test_size_budget(g3_export):
    done = _run([sys.executable, str(CI_SCRIPT), "--check-size", str(g3_export)], timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    # the gate really gates: a budget below the real size fails and names the artifact
    done = _run([sys.executable, str(CI_SCRIPT), "--check-size", str(g3_export), "--max-int8-bytes", "1000"],
                timeout=60)
    assert done.returncode == 1 and "model_int8.tflite" in done.stderr


def test_int8_outputs_bit_identical_on_aarch64(aarch64_root, x86_outputs, tmp_path):
    """The same model bytes on the same input bytes under aarch64 LiteRT: every output byte equal."""
    arm = tmp_path / "outputs-aarch64.npz"
    done = a64.run_python([str(CI_SCRIPT), "--replay", str(x86_outputs), "-o", str(arm)], timeout=600)
    assert done.returncode == 0, done.stderr
    assert " on aarch64 " in done.stdout
    done = _run([sys.executable, str(CI_SCRIPT), "--compare", str(x86_outputs), str(arm)], timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("bit-identical:") and "(aarch64)" in done.stdout

    # and the comparison would catch one int8 step on one image, naming it
    with np.load(arm) as z:
        data = {k: z[k] for k in z.files}
    data["outputs"] = data["outputs"].copy()
    data["outputs"][5, 3] += 1
    np.savez_compressed(tmp_path / "tampered.npz", **data)
    done = _run([sys.executable, str(CI_SCRIPT), "--compare", str(x86_outputs), str(tmp_path / "tampered.npz")],
                timeout=60)
    assert done.returncode == 1
    assert f"first differing image: {data['names'][5]} (#5)" in done.stderr


@pytest.mark.ssh
def test_sdeploy_bench_over_ssh_on_aarch64(aarch64_sshd, g3_export, tmp_path):
    """End to end: `sdeploy bench --device NAME --devices FILE` into the aarch64 sshd writes bench.json from
    aarch64, and its saved int8 output on a real val image equals the x86 (`--device local`) one byte for byte."""
    from shufflenet_deploy.data.digits import ensure_digits
    from shufflenet_deploy.data.preprocess import Preprocessing

    manifest = json.loads((g3_export / "manifest.json").read_text())
    pre = Preprocessing.from_dict(manifest["preprocessing"])
    image = sorted((ensure_digits(pre.input_size) / "val" / "7").iterdir())[0]
    np.save(tmp_path / "input.npy", pre.normalize(pre.pixels_from_path(image))[None])

    devices = tmp_path / "devices.toml"
    s = aarch64_sshd
    devices.write_text(
        "[devices.qemu-arm]\n"
        'transport = "ssh"\n'
        'description = "aarch64 Debian userland under qemu-user (Cortex-A76), over SSH"\n'
        f'host = "{s.host}"\nport = {s.port}\nuser = "{s.user}"\n'
        f'key = "{s.key}"\nknown_hosts = "{s.known_hosts}"\nssh_config = "/dev/null"\n'
        "threads = [1]\n")
    # no peak and one interpreter: this proves the bytes, not the speed (the fleet test measures a peak on aarch64)
    common = ["--runs", "3", "--warmup", "1", "--instances", "1", "--no-peak", "--input", str(tmp_path / "input.npy"), "--json"]
    arm_dir, x86_dir = tmp_path / "bench-arm", tmp_path / "bench-x86"
    done = _run([*SDEPLOY, "bench", str(g3_export), "--device", "qemu-arm", "--devices", str(devices), *common,
                 "--save-outputs", str(arm_dir / "outputs"), "-o", str(arm_dir)], timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads((arm_dir / "bench.json").read_text())
    assert not doc["partial"]
    assert {r["precision"] for r in doc["results"]} == {"fp32", "int8"}
    for r in doc["results"]:
        assert (r["device"], r["machine"], r["transport"]) == ("qemu-arm", "aarch64", "ssh")
        assert r["runtime"]["name"] == "ai_edge_litert" and r["runs"] == 3
        assert r["cpu"]["parts"] == ["0xd0b"]              # the pinned Cortex-A76

    done = _run([*SDEPLOY, "bench", str(g3_export), "--device", "local", *common,
                 "--save-outputs", str(x86_dir / "outputs"), "-o", str(x86_dir)], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {r["machine"] for r in json.loads((x86_dir / "bench.json").read_text())["results"]} == {"x86_64"}

    name = "output_shufflenet_v1_g3_0.5x_int8_t1.npy"
    arm_out, x86_out = np.load(arm_dir / "outputs" / name), np.load(x86_dir / "outputs" / name)
    assert arm_out.dtype == np.int8 and arm_out.shape == (1, 10)
    assert (arm_dir / "outputs" / name).read_bytes() == (x86_dir / "outputs" / name).read_bytes(), (x86_out, arm_out)
    assert int(arm_out.argmax()) == 7                   # a trained model: the real "7" is recognised
