#!/usr/bin/env python
"""Reproduce the shape of ShuffleNet v1 Table 8 on an sdeploy device (default `local`).

ShuffleNet 0.5x / 1x / 2x (g=3) and MobileNet v1 1.0 at 224x224, 480x640 and 720x1280, fp32, single thread,
synthetic weights and inputs (latency does not depend on them), exported by the export pipeline at each (h, w)
(analysis/export_cache.py export_cached: onnx2tf's plain graph, fp32; earlier runs used a pipeline bypass that
built the same graph when the pipeline took square inputs only).
MACs are counted from the TFLite graph itself (conv + FC, tflite/ops.py) and cross-checked against
complexity.py at 224. Within one input size the four models are timed interleaved in ONE runner process
(`runner.py --many --rounds N --instances 3`), so their ratios are side by side in one run.

Usage: python benchmarks/table8.py [--device local] [--rounds 5] [-o benchmarks/results/table8]
Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shufflenet_deploy.analysis.gap import PAPER_TABLE8  # noqa: E402

MODELS = ("shufflenet_v1_g3_0.5x", "shufflenet_v1_g3_1.0x", "shufflenet_v1_g3_2.0x", "mobilenet_v1_1.0x")
SIZES = ((224, 224), (480, 640), (720, 1280))
RUNS_PER_ROUND = {(224, 224): 10, (480, 640): 3, (720, 1280): 2}
INSTANCES = 3  # interpreters per model, used in turn over the rounds (runner.py --instances: why)
PAIRS = (("0.5x -> 1x (g=3)", "shufflenet_v1_g3_1.0x", "shufflenet_v1_g3_0.5x"),
         ("1x -> 2x (g=3)", "shufflenet_v1_g3_2.0x", "shufflenet_v1_g3_1.0x"),
         ("0.5x -> 2x (g=3)", "shufflenet_v1_g3_2.0x", "shufflenet_v1_g3_0.5x"),
         ("1x g=3 vs MobileNet v1 1.0", "mobilenet_v1_1.0x", "shufflenet_v1_g3_1.0x"))
LABEL = {"shufflenet_v1_g3_0.5x": "ShuffleNet 0.5x (g=3)", "shufflenet_v1_g3_1.0x": "ShuffleNet 1x (g=3)",
         "shufflenet_v1_g3_2.0x": "ShuffleNet 2x (g=3)", "mobilenet_v1_1.0x": "MobileNet v1 1.0"}


def sz(hw) -> str:
    return f"{hw[0]}x{hw[1]}"


def measure(device: str, rounds: int, log) -> dict:
    from shufflenet_deploy.tflite.ops import model_ops
    from shufflenet_deploy.analysis.export_cache import export_cached
    from shufflenet_deploy.bench.backends import backend_for
    from shufflenet_deploy.complexity import count_complexity
    from shufflenet_deploy.devices.registry import get_device

    profile = get_device(device)
    files = {}
    for hw in SIZES:
        for m in MODELS:
            files[(m, hw)] = export_cached(m, hw, ("fp32",), log) / "model_fp32.tflite"  # onnx2tf's plain graph
    macs = {k: sum(o.macs for o in model_ops(p)) for k, p in files.items()}
    for m in MODELS:  # the TFLite graph's MACs equal complexity.py's conv+FC count at 224
        assert macs[(m, (224, 224))] == count_complexity(m, input_size=224).macs_total, m
    out = {"device": device, "threads": 1, "rounds": rounds, "instances": INSTANCES,
           "sizes": [sz(hw) for hw in SIZES], "models": {},
           "runtime": None, "cpu": None}
    for hw in SIZES:
        log(f"timing {sz(hw)} interleaved ({rounds} rounds x {RUNS_PER_ROUND[hw]} runs)")
        with backend_for(profile, timeout=3600, progress=log) as backend:
            timed = backend.measure_many({m: files[(m, hw)] for m in MODELS}, threads=1, runs=RUNS_PER_ROUND[hw],
                                         warmup=2, rounds=rounds, instances=INSTANCES)
        for m in MODELS:
            e = timed[m]
            if e.error:
                raise SystemExit(f"{m} {sz(hw)}: {e.error}")
            out["models"].setdefault(m, {})[sz(hw)] = {"macs": macs[(m, hw)], "median_ms": e.median_ms,
                                                      "min_ms": e.min_ms, "runs": len(e.times_ms)}
    return out


def ratios(data: dict) -> list[dict]:
    rows = []
    for label, slow, fast in PAIRS:
        for s in data["sizes"]:
            a, b = data["models"][slow][s], data["models"][fast][s]
            pa, pb = PAPER_TABLE8[slow], PAPER_TABLE8[fast]
            rows.append({"pair": label, "size": s, "macs_ratio": a["macs"] / b["macs"],
                         "time_ratio": a["median_ms"] / b["median_ms"], "paper_macs_ratio": pa[0] / pb[0],
                         "paper_time_ratio": pa[1][s] / pb[1][s]})
    return rows


def exponent(data: dict) -> dict:
    """Per size: latency ∝ MACs^k over the three g=3 widths (the paper's "4x MACs -> ~2.6x" is k ≈ 0.69)."""
    import numpy as np

    out = {}
    widths = MODELS[:3]
    for s in data["sizes"]:
        x = np.log([data["models"][m][s]["macs"] for m in widths])
        y = np.log([data["models"][m][s]["median_ms"] for m in widths])
        py = np.log([PAPER_TABLE8[m][1][s] for m in widths])
        px = np.log([PAPER_TABLE8[m][0] for m in widths])
        out[s] = {"ours": float(np.polyfit(x, y, 1)[0]), "paper": float(np.polyfit(px, py, 1)[0])}
    return out


def markdown(data: dict, command: str) -> str:
    sizes = data["sizes"]
    rs = ratios(data)
    ex = exponent(data)
    L = [f"# ShuffleNet v1 Table 8, reproduced on `{data['device']}`", "",
         f"Command: `{command}`", "",
         f"Measured {data['measured']} on {data['cpu']} ({data['runtime']}), 1 thread, fp32, synthetic weights and "
         f"inputs, onnx2tf's plain graph. The four models of a size were timed interleaved in one runner process "
         f"({data['rounds']} rounds, {data.get('instances', 1)} interpreters per model in turn); medians. Load "
         f"average during the run (shared host): "
         f"{data.get('loadavg', 'not recorded')}. Paper: Qualcomm Snapdragon 820, 1 thread.", "",
         "## Latency (ms)", "",
         "| model | MACs (M) at 224 | " + " | ".join(f"ours {s}" for s in sizes) + " | "
         + " | ".join(f"paper {s}" for s in sizes) + " |", "|---|" + "---|" * (1 + 2 * len(sizes))]
    for m in MODELS:
        d = data["models"][m]
        L.append(f"| {LABEL[m]} | {d['224x224']['macs'] / 1e6:.1f} (paper {PAPER_TABLE8[m][0]}) | "
                 + " | ".join(f"{d[s]['median_ms']:.2f}" for s in sizes) + " | "
                 + " | ".join(f"{PAPER_TABLE8[m][1][s]:.1f}" for s in sizes) + " |")
    L += ["", "## MACs ratio vs time ratio", "",
          "| comparison | size | MACs ratio (ours) | time ratio (ours) | MACs ratio (paper) | time ratio (paper) |",
          "|---|---|---|---|---|---|"]
    for r in rs:
        L.append(f"| {r['pair']} | {r['size']} | {r['macs_ratio']:.2f}x | {r['time_ratio']:.2f}x | "
                 f"{r['paper_macs_ratio']:.2f}x | {r['paper_time_ratio']:.2f}x |")
    L += ["", "## Fitted exponent over the g=3 widths (latency ∝ MACs^k)", "", "| size | ours k | paper k |",
          "|---|---|---|"]
    for s in sizes:
        L.append(f"| {s} | {ex[s]['ours']:.3f} | {ex[s]['paper']:.3f} |")
    L += ["", "k = 1 means latency proportional to MACs; the paper's \"4x fewer MFLOPs -> ~2.6x faster\" is "
          "k = log 2.6 / log 4 ≈ 0.69.", "", "## Where we agree with the paper and where not", "", *discussion(data, rs, ex), ""]
    return "\n".join(L)


def discussion(data, rs, ex) -> list[str]:
    """Sentences computed from the numbers (so they cannot go stale when the benchmark is re-run)."""
    by = {(r["pair"], r["size"]): r for r in rs}
    per4 = {s: 4 ** v["ours"] for s, v in ex.items()}
    paper4 = {s: 4 ** v["paper"] for s, v in ex.items()}
    out = []
    out.append("- **Every 4x of MACs -> ~2.6x of speed.** Over the g=3 widths our fitted exponent gives "
               + ", ".join(f"{per4[s]:.2f}x per 4x MACs at {s}" for s in per4)
               + " (the paper's text says ~2.6x; a fit of its own Table 8 gives "
               + ", ".join(f"{paper4[s]:.2f}x at {s}" for s in paper4) + "). "
               + ("So the sub-linear scaling the paper reports holds here too: small ShuffleNets do not get "
                  "proportionally faster." if max(per4.values()) < 3.6 else
                  "Here the scaling is close to linear at least at some sizes, unlike on the paper's phone.")
               )
    small = by[("0.5x -> 1x (g=3)", "224x224")]
    big = by[("1x -> 2x (g=3)", "224x224")]
    out.append(f"- **Small end vs large end.** At 224x224, 0.5x -> 1x is {small['macs_ratio']:.2f}x the MACs for "
               f"{small['time_ratio']:.2f}x the time (paper {small['paper_time_ratio']:.2f}x); 1x -> 2x is "
               f"{big['macs_ratio']:.2f}x the MACs for {big['time_ratio']:.2f}x the time (paper "
               f"{big['paper_time_ratio']:.2f}x). "
               + ("As on the phone, the smallest model wastes the most: fixed per-op costs (shuffle transposes, "
                  "pads, concats, small-channel convs) do not shrink with width."
                  if small["time_ratio"] / small["macs_ratio"] < 0.95 * big["time_ratio"] / big["macs_ratio"] else
                  "Both steps fall short of the MACs ratio by about as much; the paper's small end fell shorter."
                  if small["time_ratio"] / small["macs_ratio"] < 1.05 * big["time_ratio"] / big["macs_ratio"] else
                  "Unlike the paper, the small end is not the least efficient here."))
    mb = [by[("1x g=3 vs MobileNet v1 1.0", s)] for s in data["sizes"]]
    out.append("- **MobileNet v1 1.0 vs ShuffleNet 1x.** MobileNet has "
               + f"{mb[0]['macs_ratio']:.2f}x the MACs; it takes "
               + ", ".join(f"{r['time_ratio']:.2f}x the time at {r['size']}" for r in mb)
               + " (paper: " + ", ".join(f"{r['paper_time_ratio']:.2f}x" for r in mb) + "). "
               + (f"ShuffleNet's real advantage is smaller than on the phone at every size, "
                  f"{100 * min(r['time_ratio'] / r['macs_ratio'] for r in mb):.0f}-"
                  f"{100 * max(r['time_ratio'] / r['macs_ratio'] for r in mb):.0f}% of its MACs "
                  "advantage: MobileNet's dense 1x1 convs run close to this CPU's GEMM peak, ShuffleNet's grouped "
                  "convs, channel shuffles and pads do not (see the gap report's % of peak and per-op shares)."
                  if all(r["time_ratio"] < 0.95 * r["paper_time_ratio"] for r in mb) else
                  "The advantage is about what the paper saw."))
    res = [by[("0.5x -> 2x (g=3)", s)]["time_ratio"] for s in data["sizes"]]
    paper_res = [by[("0.5x -> 2x (g=3)", s)]["paper_time_ratio"] for s in data["sizes"]]
    spread = max(res) / min(res)
    out.append("- **Resolution.** The paper's ratios hardly move with input size (0.5x -> 2x: " + ", ".join(
        f"{r:.2f}x" for r in paper_res) + " at " + ", ".join(data["sizes"]) + "). Ours: " + ", ".join(
        f"{r:.2f}x at {s}" for r, s in zip(res, data["sizes"])) + ". "
               + (f"They vary by {100 * (spread - 1):.0f}% across sizes here, but on this shared 2-core host a "
                  "size trend of that order is within run-to-run noise (an earlier run the same day ordered the "
                  "three sizes differently), so we draw no conclusion about resolution from it."
                  if spread > 1.10 else "Ours are as flat, within the noise of a shared host."))
    out.append("- **What differs by construction.** This is an x86 host CPU with AVX-512 (XNNPACK), not a "
               "Snapdragon 820, and onnx2tf's graph (depthwise convs as grouped CONV_2D, each channel shuffle as "
               "five TRANSPOSE/RESHAPE ops), not the paper's in-house implementation; absolute milliseconds are "
               "not comparable, only the ratios are. Untrained weights and random inputs do not change fp32 "
               "latency.")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="local")
    ap.add_argument("--rounds", type=int, default=18)
    ap.add_argument("-o", "--out", default=str(REPO / "benchmarks" / "results" / "table8"))
    ap.add_argument("--render-only", action="store_true", help="re-write OUT.md from OUT.json, no measuring")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.render_only:
        data = json.loads(out.with_suffix(".json").read_text())
        out.with_suffix(".md").write_text(markdown(data, data["command"]))
        return 0
    os.environ.setdefault("SDEPLOY_CACHE", str(REPO / ".cache" / "sdeploy"))
    start = time.time()

    def log(msg):
        print(f"[{time.time() - start:6.0f}s] {msg}", file=sys.stderr, flush=True)

    load_before = os.getloadavg()[0]
    data = measure(args.device, args.rounds, log)
    data["loadavg"] = f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after (1-minute)"
    from shufflenet_deploy.runner import cpu_info

    data["cpu"] = cpu_info()["model"]
    from importlib.metadata import version

    data["runtime"] = f"ai-edge-litert {version('ai-edge-litert')}"
    data["measured"] = time.strftime("%Y-%m-%d")
    data["ratios"] = ratios(data)
    data["exponent"] = exponent(data)
    data["paper"] = {m: {"mflops": v[0], "ms": v[1]} for m, v in PAPER_TABLE8.items()}
    command = "python benchmarks/table8.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"command": command.strip(), **data}, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(data, command.strip()))
    log(f"wrote {out.with_suffix('.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
