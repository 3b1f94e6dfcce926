"""`shufflenet_deploy.devices.cpuinfo` on real /proc/cpuinfo texts (tests/fixtures/cpuinfo/README.md names each
source), and `sdeploy devices cpuinfo FILE [--json]`."""
from __future__ import annotations

import json

import pytest

from helpers import FIXTURES
from shufflenet_deploy.cli import main as cli_main
from shufflenet_deploy.devices.cpuinfo import core_name, int8_explanation, parse_cpuinfo

FIXTURES = FIXTURES / "cpuinfo"


def facts(name, **kw):
    return parse_cpuinfo((FIXTURES / name).read_text(), **kw)


def roles(f):
    return [(c.role, c.name, c.cpus) for c in f.clusters]


@pytest.mark.parametrize("name", ["rpi4_aarch64.txt", "rpi4_armv7l.txt"])
def test_pi4_a72_has_no_dot_product(name):
    f = facts(name)
    assert f.arch == "arm" and f.model == "Raspberry Pi 4 Model B Rev 1.1"
    assert [c.name for c in f.cores] == ["Cortex-A72"] * 4 and [c.part for c in f.cores] == [0xd08] * 4
    assert roles(f) == [("all", "Cortex-A72", [0, 1, 2, 3])]
    assert f.isa["neon"] and not f.isa["dotprod"] and not f.isa["i8mm"] and not f.isa["fp16"]
    assert "widening" in int8_explanation(f) and "not expect int8 to beat fp32" in int8_explanation(f)


def test_pi4_32bit_keeps_its_neon_features_and_hardware_line():
    f = facts("rpi4_armv7l.txt")
    assert "neon" in f.cores[0].features and "vfpv4" in f.cores[0].features
    assert f.hardware == "BCM2835"


def test_pi5_a76_has_dot_product_and_fp16():
    f = facts("rpi5.txt", sysfs={i: {"max_khz": 2400000} for i in range(4)})
    assert [c.name for c in f.cores] == ["Cortex-A76"] * 4
    assert roles(f) == [("all", "Cortex-A76", [0, 1, 2, 3])] and f.clusters[0].max_mhz == 2400.0
    assert f.isa["dotprod"] and f.isa["fp16"] and not f.isa["i8mm"] and not f.isa["sve"]
    assert int8_explanation(f).startswith("int8 dot product (asimddp) present")


def test_snapdragon_8gen2_is_prime_big_little():
    f = facts("sm8550_snapdragon_8gen2.txt")
    assert [c.name for c in f.cores] == (["Cortex-A510"] * 3 + ["Cortex-A715"] * 2 + ["Cortex-A710"] * 2
                                         + ["Cortex-X3"])
    assert len(f.clusters) >= 3
    assert roles(f) == [("little", "Cortex-A510", [0, 1, 2]), ("big", "Cortex-A715", [3, 4]),
                        ("big", "Cortex-A710", [5, 6]), ("prime", "Cortex-X3", [7])]
    assert f.isa["dotprod"] and f.isa["i8mm"] and f.isa["fp16"]
    assert not f.isa["sve"] and not f.isa["sve2"] and not f.isa["bf16"]  # Qualcomm ships these cores without SVE
    assert "asimddp + i8mm" in int8_explanation(f)


def test_cpufreq_max_sets_cluster_mhz_and_ranks_clusters():
    # made-up frequencies that invert the built-in order: the sysfs numbers win
    khz = [3000000] * 3 + [1800000] * 2 + [2000000] * 2 + [1000000]
    f = facts("sm8550_snapdragon_8gen2.txt", sysfs={str(i): {"max_khz": k} for i, k in enumerate(khz)})
    assert [(c.role, c.name, c.max_mhz) for c in f.clusters] == [
        ("big", "Cortex-A510", 3000.0), ("big", "Cortex-A715", 1800.0), ("big", "Cortex-A710", 2000.0),
        ("little", "Cortex-X3", 1000.0)]


def test_x86_flags_map_to_isa():
    f = facts("x86_xeon_vm.txt")
    flags = set(f.cores[0].features)
    assert f.arch == "x86" and f.model == "Intel(R) Xeon(R) Processor" and len(f.cores) == 2
    assert roles(f) == [("all", "Intel(R) Xeon(R) Processor", [0, 1])]
    for key in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni"):
        assert f.isa[key] is (key in flags) and f.x86[key] is f.isa[key]
    assert f.isa["amx"] is ("amx_int8" in flags)
    assert f.isa["dotprod"] is ("avx512_vnni" in flags or "avx_vnni" in flags)
    assert f.x86["vendor"] == "GenuineIntel" and not f.isa["sve"] and not f.isa["neon"]


def test_x86_without_vnni_has_no_dot_product():
    text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: old\nflags\t\t: fpu sse2 avx avx2 fma\n"
    f = parse_cpuinfo(text)
    assert f.isa["avx2"] and f.isa["fma"] and not f.isa["dotprod"] and not f.isa["avx512f"]
    assert "no int8 dot-product" in int8_explanation(f)


def test_old_arm_layout_with_one_shared_block():
    # older 32-bit kernels: "processor" lines first, then one Features/CPU part block for all cores
    text = ("Processor\t: ARMv7 Processor rev 4 (v7l)\nprocessor\t: 0\nBogoMIPS\t: 38.40\n\nprocessor\t: 1\n"
            "BogoMIPS\t: 38.40\n\nFeatures\t: swp half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt\n"
            "CPU implementer\t: 0x41\nCPU architecture: 7\nCPU part\t: 0xc07\n\nHardware\t: sun8i\n")
    f = parse_cpuinfo(text)
    assert [c.name for c in f.cores] == ["Cortex-A7", "Cortex-A7"] and f.isa["neon"] and not f.isa["dotprod"]
    assert f.model == "ARMv7 Processor rev 4 (v7l)" and f.hardware == "sun8i"


def test_unknown_parts_keep_their_numbers():
    assert core_name(0x41, 0xfff) == "unknown (implementer 0x41, part 0xfff)"
    assert core_name(None, None) == "unknown (implementer ?, part ?)"
    assert core_name(0x51, 0x805).startswith("Kryo 4xx Silver") and core_name(0x41, 0xd85) == "Cortex-X925"


@pytest.mark.parametrize("text", ["", "hello world\n\x00\xff::: :\n", "processor\t: 0\nfoo\t: bar\n", ":\n:::\n"])
def test_garbage_is_unknown_not_an_error(text):
    f = parse_cpuinfo(text)
    assert f.arch == "unknown" and not any(f.isa.values())
    assert "not recognised" in int8_explanation(f)
    json.dumps(f.to_dict())


def test_cli_json(capsys):
    assert cli_main(["devices", "cpuinfo", str(FIXTURES / "sm8550_snapdragon_8gen2.txt"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arch"] == "arm" and len(out["cores"]) == 8
    assert out["cores"][7] == {**out["cores"][7], "index": 7, "part": "0xd4e", "name": "Cortex-X3"}
    assert "i8mm" in out["cores"][0]["features"]
    assert [c["role"] for c in out["clusters"]] == ["little", "big", "big", "prime"]
    assert {"dotprod", "i8mm", "fp16", "sve", "sve2", "bf16", "avx2", "avx512_vnni", "amx"} <= set(out["isa"])
    assert out["isa"]["dotprod"] is True and out["isa"]["sve"] is False


def test_cli_table(capsys):
    assert cli_main(["devices", "cpuinfo", str(FIXTURES / "rpi4_aarch64.txt")]) == 0
    out = capsys.readouterr().out
    assert "Cortex-A72" in out and "dotprod no" in out and "widening kernels" in out


def test_cli_missing_file_is_one_line_exit_2(tmp_path, capsys):
    assert cli_main(["devices", "cpuinfo", str(tmp_path / "nope.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot read") and "nope.txt" in err[0]
    assert cli_main(["devices", "cpuinfo", str(tmp_path)]) == 2  # a folder, not a file


@pytest.mark.parametrize("name, cores, cpus", [
    ("sm8550_snapdragon_8gen2.txt", "big", [3, 4, 5, 6, 7]),     # the fast cores: big and prime
    ("sm8550_snapdragon_8gen2.txt", "little", [0, 1, 2]),
    ("sm8550_snapdragon_8gen2.txt", "prime", [7]),
    ("sm8550_snapdragon_8gen2.txt", "all", list(range(8))),
    ("rpi4_aarch64.txt", "big", [0, 1, 2, 3]),                   # one cluster: its cores are the big ones
    ("rpi5.txt", "all", [0, 1, 2, 3]),
])
def test_cores_choice_maps_to_the_clusters_cpus(name, cores, cpus):
    from shufflenet_deploy.devices.cpuinfo import cluster_of, cpus_of

    assert cpus_of(facts(name).to_dict(), cores) == cpus
    # and a result pinned there says the cluster it was asked for (a one-cluster board's "big" is "all")
    assert cluster_of(facts(name).to_dict(), cpus) == (cores if name.startswith("sm8550") or cores == "all" else "all")


@pytest.mark.parametrize("name, cores", [("rpi4_aarch64.txt", "little"), ("rpi5.txt", "prime")])
def test_cores_choice_the_device_lacks_is_one_line(name, cores):
    from shufflenet_deploy.devices.cpuinfo import cpus_of
    from shufflenet_deploy.errors import UserError

    with pytest.raises(UserError, match=f"has no {cores} cores .*Cortex-A7"):
        cpus_of(facts(name).to_dict(), cores, "pi")
    with pytest.raises(UserError, match="clusters are unknown"):
        cpus_of(None, cores)


def test_int8_vs_fp32_is_explained_by_the_recorded_isa_or_left_to_the_device_line():
    from shufflenet_deploy.bench.efficiency import explain_int8

    pi4 = facts("rpi4_aarch64.txt").to_dict()
    line = explain_int8(pi4, 0.9, 1.1)
    assert line.startswith("int8 ran 0.90x the speed of fp32 (the device's own peak kernels promise 1.10x)")
    assert "widening" in line and "--op-profile" not in line
    assert "--op-profile" in explain_int8(pi4, 0.4, 1.1)   # far below the kernels' promise: the ops are why
    # a results file without CPU facts (no cpuinfo, or an older sdeploy): the ratio alone, and the report's
    # device line says once that the ISA was not recorded (not a guess, not the same sentence on every row)
    assert explain_int8(None, 2.3, None) == "int8 ran 2.30x the speed of fp32"
