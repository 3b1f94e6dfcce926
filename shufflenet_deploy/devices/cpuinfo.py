"""Device facts that explain speed: core types, big.LITTLE clusters, and the ISA features XNNPACK picks kernels by.

`parse_cpuinfo` reads a saved Linux `/proc/cpuinfo` (arm64; 32-bit ARM as on Raspberry Pi OS, features under
"Features"; x86, features under "flags"). Stdlib only, so a report can be built on any machine from a saved file.

Why these facts decide the numbers a benchmark shows:

* XNNPACK's int8 GEMM (1x1 and full convolutions, fully connected) uses dot-product kernels where the CPU has
  them: ARM `asimddp` (SDOT/UDOT, ARMv8.2 dot product: Cortex-A55/A75/A76 and later) and `i8mm` (SMMLA), x86
  AVX512-VNNI / AVX-VNNI (VPDPBUSD). Elsewhere, e.g. a Raspberry Pi 4's Cortex-A72, it falls back to slower
  widening multiply-accumulate kernels (int8 -> int16 -> int32), and int8 is little faster than fp32.
* XNNPACK's int8 depthwise kernels never use dot-product instructions, so a depthwise-heavy net such as
  ShuffleNet gains less from `asimddp` than its FLOP count suggests.
* fp16 arithmetic needs `asimdhp` (ARMv8.2 FP16 vector arithmetic; `fphp` is the scalar half); without it an fp16
  model runs in fp32. `sve`, `sve2`, `bf16` are recorded because newer XNNPACK/KleidiAI builds add kernels for them.
* On big.LITTLE the same kernel runs several times slower on a little core, so cores are grouped by core type into
  clusters and ranked: by cpufreq `cpuinfo_max_freq` when given, else by a built-in performance order.

Part numbers checked against the Linux kernel's arch/arm64/include/asm/cputype.h (ARM_CPU_PART_*,
QCOM_CPU_PART_KRYO_*, APPLE_CPU_PART_*) and util-linux sys-utils/lscpu-arm.c. The kernel names Kryo 2xx-4xx only
by tier (0x800 is also the server Falkor v1); their base cores (2xx: A73/A53, 3xx: A75/A55, 4xx: A76/A55) are as
widely reported, not from those headers. From Kryo 5xx on Qualcomm reports plain ARM part numbers (cputype.h
defines e.g. KRYO_6XX_GOLD as CORTEX_A78), so those decode as Cortex cores.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

# (implementer, part) -> (core name, rough performance rank used only to order clusters without cpufreq data)
PARTS: dict[tuple[int, int], tuple[str, int]] = {
    (0x41, 0xc07): ("Cortex-A7", 5), (0x41, 0xc0f): ("Cortex-A15", 20),
    (0x41, 0xd04): ("Cortex-A35", 8), (0x41, 0xd03): ("Cortex-A53", 10), (0x41, 0xd05): ("Cortex-A55", 12),
    (0x41, 0xd46): ("Cortex-A510", 14), (0x41, 0xd80): ("Cortex-A520", 15),
    (0x41, 0xd07): ("Cortex-A57", 22), (0x41, 0xd08): ("Cortex-A72", 25), (0x41, 0xd09): ("Cortex-A73", 27),
    (0x41, 0xd0a): ("Cortex-A75", 30), (0x41, 0xd0b): ("Cortex-A76", 35), (0x41, 0xd0c): ("Neoverse N1", 36),
    (0x41, 0xd0d): ("Cortex-A77", 38), (0x41, 0xd41): ("Cortex-A78", 40), (0x41, 0xd4b): ("Cortex-A78C", 40),
    (0x41, 0xd47): ("Cortex-A710", 42), (0x41, 0xd49): ("Neoverse N2", 43), (0x41, 0xd4d): ("Cortex-A715", 44),
    (0x41, 0xd81): ("Cortex-A720", 46), (0x41, 0xd87): ("Cortex-A725", 47),
    (0x41, 0xd44): ("Cortex-X1", 50), (0x41, 0xd4c): ("Cortex-X1C", 50), (0x41, 0xd40): ("Neoverse V1", 51),
    (0x41, 0xd48): ("Cortex-X2", 52), (0x41, 0xd4e): ("Cortex-X3", 54), (0x41, 0xd4f): ("Neoverse V2", 55),
    (0x41, 0xd82): ("Cortex-X4", 56), (0x41, 0xd85): ("Cortex-X925", 58),
    (0x51, 0x801): ("Kryo 2xx Silver (A53-based)", 10), (0x51, 0x803): ("Kryo 3xx Silver (A55-based)", 12),
    (0x51, 0x805): ("Kryo 4xx Silver (A55-based)", 12), (0x51, 0x800): ("Kryo 2xx Gold (A73-based)", 27),
    (0x51, 0x802): ("Kryo 3xx Gold (A75-based)", 30), (0x51, 0x804): ("Kryo 4xx Gold (A76-based)", 35),
    (0x51, 0x001): ("Oryon", 56),
    (0x61, 0x022): ("Apple M1 Icestorm", 15), (0x61, 0x023): ("Apple M1 Firestorm", 57),
    (0x61, 0x024): ("Apple M1 Pro Icestorm", 15), (0x61, 0x025): ("Apple M1 Pro Firestorm", 57),
    (0x61, 0x028): ("Apple M1 Max Icestorm", 15), (0x61, 0x029): ("Apple M1 Max Firestorm", 57),
    (0x61, 0x032): ("Apple M2 Blizzard", 16), (0x61, 0x033): ("Apple M2 Avalanche", 58),
}
_RANK = {name: rank for name, rank in PARTS.values()}

ARM_ISA = ("neon", "dotprod", "i8mm", "fp16", "bf16", "sve", "sve2")
X86_ISA = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx")


@dataclass
class Core:
    index: int
    implementer: int | None
    part: int | None
    name: str
    features: list[str] = field(default_factory=list)


@dataclass
class Cluster:
    cpus: list[int]
    name: str
    max_mhz: float | None
    role: str = "all"  # "little" | "big" | "prime" | "all"


@dataclass
class CpuFacts:
    arch: str  # "arm" | "x86" | "unknown"
    model: str | None
    cores: list[Core]
    clusters: list[Cluster]
    isa: dict
    x86: dict | None
    hardware: str | None

    def to_dict(self) -> dict:
        """JSON-ready; implementer and part as the hex strings /proc/cpuinfo shows."""
        cores = [{"index": c.index, "implementer": _hex(c.implementer, 2), "part": _hex(c.part, 3),
                  "name": c.name, "features": c.features} for c in self.cores]
        return {"arch": self.arch, "model": self.model, "hardware": self.hardware, "cores": cores,
                "clusters": [dataclasses.asdict(c) for c in self.clusters], "isa": self.isa, "x86": self.x86,
                "int8": int8_explanation(self)}


def parse_cpuinfo(text: str, *, sysfs: dict | None = None) -> CpuFacts:
    """Parse a saved /proc/cpuinfo; never raises on odd text (unrecognised input gives arch "unknown").

    `sysfs` maps cpu index (int or str) -> {"max_khz": int} from cpufreq `cpuinfo_max_freq`; it sets each
    cluster's max_mhz and ranks clusters by it.
    """
    records, shared = _records(text)
    keys = set(shared).union(*records)
    arch = "arm" if keys & {"CPU implementer", "CPU part"} else "x86" if keys & {"flags", "vendor_id"} else "unknown"

    def get(rec, key):
        return rec.get(key) or shared.get(key)

    cores = []
    for rec in records:
        features = (get(rec, "Features" if arch == "arm" else "flags") or "").split()
        if arch == "arm":
            impl, part = _int(get(rec, "CPU implementer")), _int(get(rec, "CPU part"))
            cores.append(Core(int(rec["processor"]), impl, part, core_name(impl, part), features))
        else:
            name = get(rec, "model name") or "unknown"
            cores.append(Core(int(rec["processor"]), None, None, name, features))
    common = set(cores[0].features).intersection(*(c.features for c in cores[1:])) if cores else set()
    isa, x86 = _isa(arch, common)
    if arch == "x86":
        first = records[0] if records else {}
        x86 = {"vendor": get(first, "vendor_id"), "family": _int(get(first, "cpu family"), 10),
               "model": _int(get(first, "model"), 10), **x86}
    first = records[0] if records else {}
    model = shared.get("Model") or get(first, "model name") or shared.get("Processor")
    return CpuFacts(arch, model, cores, _clusters(cores, sysfs or {}), isa, x86, shared.get("Hardware"))


def core_name(implementer: int | None, part: int | None) -> str:
    """"Cortex-A76" for (0x41, 0xd0b); unknown pairs keep their numbers so a report can still be decoded later."""
    known = PARTS.get((implementer, part))
    if known:
        return known[0]
    return f"unknown (implementer {_hex(implementer, 2) or '?'}, part {_hex(part, 3) or '?'})"


def int8_explanation(facts: CpuFacts) -> str:
    """One sentence for reports: will XNNPACK's int8 GEMM get dot-product kernels on this CPU?"""
    isa = facts.isa
    if facts.arch == "unknown":
        return "CPU not recognised: cannot tell whether XNNPACK's int8 GEMM gets dot-product kernels here"
    if isa["dotprod"]:
        if facts.arch == "arm":
            what = "asimddp + i8mm" if isa["i8mm"] else "asimddp"
        else:
            what = " + ".join(n for n, k in (("AVX512-VNNI", "avx512_vnni"), ("AVX-VNNI", "avx_vnni"),
                                             ("AMX", "amx")) if isa[k])
        return (f"int8 dot product ({what}) present: XNNPACK's int8 GEMM runs several times the fp32 MAC rate "
                "(the peak kernels measure how much; its int8 depthwise kernels do not use it)")
    return ("no int8 dot-product instructions (asimddp / VNNI): XNNPACK's int8 GEMM runs its slower widening "
            "kernels here; do not expect int8 to beat fp32 by much")


def format_facts(facts: CpuFacts) -> str:
    """A short human table: one line per cluster, the ISA booleans, the int8 sentence."""
    lines = [f"CPU: {facts.model or '?'} ({facts.arch}, {len(facts.cores)} cores"
             + (f", hardware {facts.hardware})" if facts.hardware else ")")]
    rows = [("role", "cpus", "core", "max MHz")] + [
        (c.role, _cpu_ranges(c.cpus), c.name, f"{c.max_mhz:.0f}" if c.max_mhz else "-") for c in facts.clusters]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    keys = ("dotprod",) + X86_ISA if facts.arch == "x86" else ARM_ISA
    lines.append("ISA: " + ", ".join(f"{k} {'yes' if facts.isa[k] else 'no'}" for k in keys))
    lines.append("int8: " + int8_explanation(facts))
    return "\n".join(lines)


def _records(text: str) -> tuple[list[dict], dict]:
    """Per-processor key/value dicts, and the lines outside any processor block (Hardware, Model, ...).

    Old ARM kernels print "processor: N" lines first and one shared Features/CPU part block after; those shared
    values fill in for every core.
    """
    records, shared, current = [], {}, None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not line.strip():
            current = None
        elif not sep or not key:
            continue
        elif key == "processor" and value.isdigit():
            current = {"processor": value}
            records.append(current)
        else:
            (shared if current is None else current).setdefault(key, value)
    return records, shared


def _isa(arch: str, f: set[str]) -> tuple[dict, dict | None]:
    """Every ISA key, always present; `dotprod` means "int8 dot product XNNPACK can use" on ARM and x86 alike."""
    x86 = {"avx2": "avx2" in f, "fma": "fma" in f, "avx512f": "avx512f" in f, "avx512_vnni": "avx512_vnni" in f,
           "avx_vnni": "avx_vnni" in f, "amx": any(x.startswith("amx_") for x in f)}
    if arch == "x86":
        isa = {"neon": False, "dotprod": x86["avx512_vnni"] or x86["avx_vnni"], "i8mm": False,
               "fp16": "avx512_fp16" in f, "bf16": bool(f & {"avx512_bf16", "amx_bf16"}), "sve": False,
               "sve2": False}
        return {**isa, **x86}, x86
    isa = {"neon": bool(f & {"asimd", "neon"}), "dotprod": "asimddp" in f, "i8mm": "i8mm" in f,
           "fp16": "asimdhp" in f, "bf16": bool(f & {"bf16", "asimdbf16"}), "sve": "sve" in f, "sve2": "sve2" in f}
    return {**isa, **{k: False for k in X86_ISA}}, None


def _clusters(cores: list[Core], sysfs: dict) -> list[Cluster]:
    """One cluster per core type; with several, rank slowest -> "little", others "big", and a smaller top tier
    (>= 3 types, fewer cores than the tier below, e.g. 1x X3 over 2x A715) -> "prime"."""
    groups: dict[str, list[int]] = {}
    for core in cores:
        groups.setdefault(core.name, []).append(core.index)
    clusters = [Cluster(sorted(cpus), name, _max_mhz(cpus, sysfs)) for name, cpus in groups.items()]
    if len(clusters) > 1:
        by_freq = all(c.max_mhz for c in clusters)
        ranked = sorted(clusters, key=lambda c: (c.max_mhz if by_freq else 0, _RANK.get(c.name, 0)))
        for c in ranked:
            c.role = "big"
        ranked[0].role = "little"
        if len(ranked) >= 3 and len(ranked[-1].cpus) < len(ranked[-2].cpus):
            ranked[-1].role = "prime"
    return sorted(clusters, key=lambda c: c.cpus[0])


def _max_mhz(cpus: list[int], sysfs: dict) -> float | None:
    khz = [_int((sysfs.get(i) or sysfs.get(str(i)) or {}).get("max_khz"), 10) for i in cpus]
    khz = [k for k in khz if k]
    return max(khz) / 1000 if khz else None


def _cpu_ranges(cpus: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5" (the sysfs cpulist style)."""
    spans: list[list[int]] = []
    for cpu in cpus:
        if spans and cpu == spans[-1][1] + 1:
            spans[-1][1] = cpu
        else:
            spans.append([cpu, cpu])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in spans)


def _int(value, base: int = 0) -> int | None:
    try:
        return int(str(value).strip(), base)
    except (TypeError, ValueError):
        return None


def _hex(value: int | None, digits: int) -> str | None:
    return None if value is None else f"0x{value:0{digits}x}"


def cluster_of(facts: dict | None, cpus: list[int] | None) -> str | None:
    """Which cluster a run pinned to `cpus` used ("big", "little", "prime", "all", or "mixed"), from the JSON
    facts a bench result carries; None when the facts or the CPU list are unknown. Big and prime cores together
    are "big", as --cores big chooses them."""
    clusters = (facts or {}).get("clusters") or []
    if not clusters or not cpus:
        return None
    every = {c for cl in clusters for c in cl.get("cpus") or []}
    if set(cpus) >= every:
        return "all"
    roles = {cl.get("role") for cl in clusters if set(cpus) & set(cl.get("cpus") or [])}
    if roles == {"big", "prime"}:
        return "big"  # what --cores big pins to on a phone with a prime core (cpus_of)
    return roles.pop() if len(roles) == 1 else "mixed"


CORE_CHOICES = ("big", "little", "prime", "all")


def cpus_of(facts: dict | None, cores: str, device: str = "the device") -> list[int]:
    """The CPUs `--cores` names, from a device's facts: "all" every CPU, "big" the fast cores (big, and prime
    where a phone has one), "little" and "prime" those clusters. Refused in one line where the device has no
    such cluster (a one-cluster board has no little cores) or its facts are unknown."""
    from ..errors import UserError

    clusters = (facts or {}).get("clusters") or []
    if not clusters:
        raise UserError(f"--cores {cores}: {device}'s CPU clusters are unknown (no readable /proc/cpuinfo)",
                        "set affinity in its devices.toml profile instead")
    if cores == "all":
        return sorted({c for cl in clusters for c in cl.get("cpus") or []})
    roles = {"big": ("big", "prime"), "little": ("little",), "prime": ("prime",)}[cores]
    cpus = sorted({c for cl in clusters if cl.get("role") in roles for c in cl.get("cpus") or []})
    if not cpus and cores == "big" and len(clusters) == 1:
        return sorted(clusters[0].get("cpus") or [])  # one cluster: its cores are the big ones
    if not cpus:
        have = ", ".join(f"{cl.get('role')}: {cl.get('name')} (CPUs {cl.get('cpus')})" for cl in clusters)
        raise UserError(f"--cores {cores}: {device} has no {cores} cores (it has: {have})",
                        "choose one of its clusters, or --cores all")
    return cpus


SUMMARY_ISA = ("dotprod", "i8mm", "fp16", "sve", "sve2", "bf16", "avx2", "fma", "avx512f", "avx512_vnni",
               "avx_vnni", "amx")


def summary(facts: dict) -> str:
    """One line from the JSON facts a result carries: the CPU, its clusters, the ISA features that decide kernels."""
    cores = "; ".join(f"{c.get('role')}: {len(c.get('cpus') or [])}x {c.get('name')}"
                      + (f" @ {c['max_mhz']:.0f} MHz" if c.get("max_mhz") else "")
                      for c in facts.get("clusters") or [])
    flags = ", ".join(k for k in SUMMARY_ISA if (facts.get("isa") or {}).get(k))
    arm = facts.get("arch") == "arm" or (facts.get("isa") or {}).get("neon")
    flags = flags or ("no dotprod, i8mm or fp16" if arm else "none of " + ", ".join(SUMMARY_ISA))  # never a dash
    return f"{facts.get('model') or facts.get('hardware') or '?'} [{cores}]; ISA: {flags}"
