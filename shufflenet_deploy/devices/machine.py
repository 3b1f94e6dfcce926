"""The facts that decide a measured number, as one comparable record: which machine a derived number is valid on.

A peak (bench/peak.py), a predictor (analysis/predict.py) or a sweep being resumed was measured on one machine;
applied to another it is wrong without a word. Device *names* do not say which machine: `local` is every
machine, a CI cache is restored on another CPU generation, a profile gets renamed. So each derived document carries
`MachineFacts` and is compared with the device's facts before use. Same facts under another name is fine.

What decides speed, and is compared: the CPU model, the core types with their counts and cpufreq maximum (the
clusters), the ISA features XNNPACK picks kernels by (devices/cpuinfo.py: an int8 GEMM with or without a dot
product is a different kernel), the runtime's name and version, the thread count and the cores used (affinity).
Not compared: the device's name, the host name, the kernel, the clock of the moment.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from ..validate import is_int, is_number

# the ISA keys of devices/cpuinfo.py's `isa` block that change which kernels XNNPACK runs
SPEED_ISA = ("neon", "dotprod", "i8mm", "fp16", "bf16", "sve", "sve2", "avx2", "fma", "avx512f", "avx512_vnni",
             "avx_vnni", "amx")


@dataclass(frozen=True)
class Cluster:
    core: str
    count: int
    max_mhz: float | None


@dataclass(frozen=True)
class MachineFacts:
    cpu: str | None  # the CPU model line (/proc/cpuinfo)
    arch: str  # arm | x86 | unknown
    clusters: tuple[Cluster, ...]
    isa: tuple[str, ...]  # the SPEED_ISA features present, in SPEED_ISA order
    runtime: str | None  # "ai_edge_litert 2.1.0"
    threads: int | None
    cpus: tuple[int, ...] | None  # the cores the runs were pinned to; None: not pinned

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def of(cls, facts: dict | None, runtime: dict | str | None, threads: int | None,
           cpus: list[int] | None = None) -> "MachineFacts | None":
        """From a device's CPU facts (cpuinfo.CpuFacts.to_dict(), as results carry them), its runtime and the run's
        threads and affinity; None when the CPU facts are unknown (nothing to key on)."""
        if not facts or not isinstance(facts, dict) or not facts.get("clusters"):
            return None
        isa = facts.get("isa") or {}
        clusters = tuple(Cluster(str(c.get("name")), len(c.get("cpus") or []),
                                 float(c["max_mhz"]) if c.get("max_mhz") else None)
                         for c in facts["clusters"])
        return cls(cpu=facts.get("model") or facts.get("hardware"), arch=str(facts.get("arch") or "unknown"),
                   clusters=clusters, isa=tuple(k for k in SPEED_ISA if isa.get(k)),
                   runtime=runtime_id(runtime), threads=threads, cpus=tuple(sorted(cpus)) if cpus else None)

    # ------------------------------------------------------------------------------------------ comparing
    def differences(self, other: "MachineFacts", *, runtime: bool = True, threads: bool = True) -> list[str]:
        """What differs between the machine a number was measured on (self) and the one it is applied to (other),
        one short phrase each; empty when the number is valid there. A field unknown on either side is skipped
        for the runtime (a predict run does not start the runtime), never for the CPU."""
        out = []
        if self.cpu != other.cpu:
            out.append(f"CPU {self.cpu!r} vs {other.cpu!r}")
        if self.clusters != other.clusters:
            out.append(f"cores {_clusters(self.clusters)} vs {_clusters(other.clusters)}")
        if self.isa != other.isa:
            gone = [k for k in self.isa if k not in other.isa]
            new = [k for k in other.isa if k not in self.isa]
            out.append("ISA " + ", ".join([f"{k} there, not here" for k in gone]
                                          + [f"{k} here, not there" for k in new]))
        if runtime and self.runtime and other.runtime and self.runtime != other.runtime:
            out.append(f"runtime {self.runtime} vs {other.runtime}")
        if threads and self.threads != other.threads:
            out.append(f"{self.threads} vs {other.threads} thread(s)")
        if threads and self.cpus != other.cpus:
            out.append(f"cores used {_cpus(self.cpus)} vs {_cpus(other.cpus)}")
        return out

    def summary(self) -> str:
        """One line: the machine a number came from."""
        parts = [f"{self.cpu or '?'} ({self.arch}; {_clusters(self.clusters)})",
                 "ISA " + (", ".join(k for k in self.isa if k not in ("neon", "fma")) or "baseline")]
        if self.runtime:
            parts.append(self.runtime)
        if self.threads:
            parts.append(f"{self.threads} thread(s)" + (f" on CPUs {_cpus(self.cpus)}" if self.cpus else ""))
        return "; ".join(parts)

    # ------------------------------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        return {"cpu": self.cpu, "arch": self.arch,
                "clusters": [{"core": c.core, "count": c.count, "max_mhz": c.max_mhz} for c in self.clusters],
                "isa": list(self.isa), "runtime": self.runtime, "threads": self.threads,
                "cpus": list(self.cpus) if self.cpus is not None else None}

    @classmethod
    def from_dict(cls, data, where: str) -> "MachineFacts":
        """Strict: every field typed and sane, or one UserError naming WHERE and the field."""
        def bad(field: str, why: str):
            return UserError(f"{where}: machine facts field {field!r} {why}",
                             "the file is damaged or was edited; measure again to rewrite it")

        if not isinstance(data, dict):
            raise bad("machine", "is not an object")
        cpu, arch, runtime = data.get("cpu"), data.get("arch"), data.get("runtime")
        if cpu is not None and not isinstance(cpu, str):
            raise bad("cpu", "is not a string")
        if not isinstance(arch, str) or arch not in ("arm", "x86", "unknown"):
            raise bad("arch", "is not one of arm, x86, unknown")
        if runtime is not None and not isinstance(runtime, str):
            raise bad("runtime", "is not a string")
        clusters = data.get("clusters")
        if not isinstance(clusters, list) or not clusters:
            raise bad("clusters", "is not a non-empty list")
        parsed = []
        for c in clusters:
            if not isinstance(c, dict) or not isinstance(c.get("core"), str) or not (is_int(c.get("count")) and c["count"] > 0):
                raise bad("clusters", "holds an entry without a core name and a positive count")
            mhz = c.get("max_mhz")
            if mhz is not None and not (is_number(mhz) and 0 < mhz < 20000):
                raise bad("clusters", f"holds max_mhz {mhz!r} (a frequency in MHz, or null)")
            parsed.append(Cluster(c["core"], c["count"], float(mhz) if mhz is not None else None))
        isa = data.get("isa")
        if not isinstance(isa, list) or any(k not in SPEED_ISA for k in isa):
            raise bad("isa", f"is not a list of {', '.join(SPEED_ISA)}")
        threads = data.get("threads")
        if threads is not None and not (is_int(threads) and 0 < threads <= 1024):
            raise bad("threads", f"is {threads!r}, not a thread count")
        cpus = data.get("cpus")
        if cpus is not None and not (isinstance(cpus, list) and all(is_int(c) and 0 <= c < 4096 for c in cpus)):
            raise bad("cpus", "is not a list of CPU numbers")
        return cls(cpu, arch, tuple(parsed), tuple(k for k in SPEED_ISA if k in isa), runtime, threads,
                   tuple(sorted(cpus)) if cpus is not None else None)


def runtime_id(runtime: dict | str | None) -> str | None:
    """"ai_edge_litert 2.1.0" from a result's runtime block ({name, version}); None when unknown."""
    if isinstance(runtime, str):
        return runtime.strip() or None
    if not isinstance(runtime, dict) or not runtime.get("name"):
        return None
    return f"{runtime['name']} {runtime.get('version') or ''}".strip()


def _clusters(clusters) -> str:
    return " + ".join(f"{c.count}x {c.core}" + (f" @ {c.max_mhz:.0f} MHz" if c.max_mhz else "") for c in clusters)


def _cpus(cpus) -> str:
    return ",".join(map(str, cpus)) if cpus else "all"
