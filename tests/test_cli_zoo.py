"""`sdeploy zoo` and `sdeploy flops`: output, speed, and one-line errors with exit code 2."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shufflenet_deploy.cli import main
from shufflenet_deploy.zoo.registry import list_models

SDEPLOY = str(Path(sys.executable).parent / "sdeploy")


def sdeploy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SDEPLOY, *args], capture_output=True, text=True, timeout=60)


def test_zoo_lists_every_model_quickly():
    start = time.perf_counter()
    result = sdeploy("zoo")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert elapsed < 3.0
    assert all(name in result.stdout for name in list_models())
    assert "137 (conv)" in result.stdout and "524 (conv+fc)" in result.stdout


def test_zoo_json_and_pattern(capsys):
    assert main(["zoo", "--json", "--pattern", "shufflenet_v1_g3_*"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == list_models("shufflenet_v1_g3_*")
    row = next(r for r in rows if r["model"] == "shufflenet_v1_g3_1.0x")
    assert (row["family"], row["macs_conv"], row["paper"]["macs_m"]) == ("shufflenet_v1", 136_500_672, 137)


def test_flops_json(capsys):
    assert main(["flops", "mobilenet_v1_0.5x", "--json", "--paper"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"model", "input_size", "macs_conv", "macs_total", "params"} <= data.keys()
    assert "layers" not in data and data["paper_comparison"]["matches"] is True
    assert main(["flops", "mobilenet_v1_0.5x", "--json", "--per-layer", "--input-size", "64"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_size"] == 64 and data["layers"][0]["name"] == "features.0.0"


def test_flops_text(capsys):
    assert main(["flops", "shufflenet_v1_g3_2.0x_se", "--paper", "--per-layer"]) == 0
    out = capsys.readouterr().out
    assert "features.15.se.fc2" in out and "526.93 M conv+FC" in out
    assert "paper: 527 M (conv+fc, ShuffleNet v1 Table 5)" in out and "matches after rounding" in out
    assert main(["flops", "shufflenet_v1_g2_0.25x", "--paper"]) == 0
    assert "no published figure" in capsys.readouterr().out


@pytest.mark.parametrize("args, expected", [
    (["flops", "shufflenet_v1_g3_1.0"], "did you mean shufflenet_v1_g3_1.0x"),
    (["flops", "shufflenet_v1_g5_1.0x"], "groups are 1, 2, 3, 4, 8"),
    (["flops", "shufflenet_v1_g3_0.3x"], "widths are 0.25x, 0.5x, 1.0x, 1.5x, 2.0x"),
    (["zoo", "--pattern", "resnet*"], "no model matches 'resnet*'"),
])
def test_user_errors_are_one_line_exit_2(args, expected):
    result = sdeploy(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and expected in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_bad_input_size_is_a_usage_error():
    result = sdeploy("flops", "shufflenet_v1_g3_1.0x", "--input-size", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
