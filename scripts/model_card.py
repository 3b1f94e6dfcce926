#!/usr/bin/env python
"""Write models/<checkpoint>.md, the card of a bundled model, from the checkpoint and its training summary."""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# What a model is for, when it is not a plain bundled model (appended to its card).
NOTES = {
    "shufflenet_v1_g8_0.5x_digits80_nosmooth.pt": (
        "- **Purpose: a test model for int8 repair.** The g8 recipe *without* label smoothing, which fails in int8: its "
        "activations are heavy-tailed (logits to -328 on a few digits), so TensorFlow's min/max int8 ranges clip them "
        "from the last stage on and the plain int8 TFLite loses 0.74 top-1 points (99.26% agreement with fp32 on the "
        "269 val images). `sdeploy export` finds it (`int8_layers`: 2.8% of the FC output clipped) and repairs it "
        "(activation ranges from histograms); `tests/test_int8_repair.py`, `benchmarks/results/int8_repair.txt`. "
        "The bundled val split shows the damage, so no harder split was needed. Do not ship it: use "
        "`shufflenet_v1_g8_0.5x_digits80.pt`."),
}


def card(checkpoint: Path) -> str:
    import torch

    from shufflenet_deploy.complexity import count_complexity

    blob = torch.load(checkpoint, map_location="cpu", weights_only=True)
    meta, summary = blob["meta"], blob["train"]
    cfg = summary["config"]
    c = count_complexity(meta["model"], input_size=meta["input_size"], num_classes=meta["num_classes"],
                         **meta["options"])
    best = max(summary["curve"], key=lambda e: e["val_top1"])
    smoothing = f" --label-smoothing {cfg['label_smoothing']:g}" if cfg.get("label_smoothing") else ""
    command = (f"sdeploy train {meta['model']} --data digits --input-size {cfg['input_size']} --epochs {cfg['epochs']} "
               f"--batch {cfg['batch']} --seed {cfg['seed']}{smoothing} -o models/{checkpoint.name}")
    return f"""# {checkpoint.name}

- **Model**: `{meta['model']}` (options {json.dumps(meta['options'])}), {meta['num_classes']} classes, input {meta['input_size']}x{meta['input_size']} RGB
- **Data**: the bundled scikit-learn digits set (`sdeploy data digits`), fixed split: {summary['train_images']} train / {summary['val_images']} val images (calibration split held out from both)
- **Preprocessing**: `{json.dumps(meta['preprocessing'])}`
- **Size**: {checkpoint.stat().st_size / 1e6:.2f} MB on disk, {c.params / 1e6:.3f} M parameters, {c.macs_total / 1e6:.2f} M MACs (conv+FC) at {meta['input_size']} px
- **Validation top-1 (PyTorch, final epoch)**: {summary['val_top1']:.2%} (best epoch {best['epoch']}: {best['val_top1']:.2%})
- **Recipe**: SGD momentum 0.9 (Nesterov), lr {summary['learning_rate']:.4g} (0.5 x batch/1024) decayed linearly to 0, weight decay {cfg['weight_decay']} (not on BN/biases), label smoothing {cfg.get('label_smoothing', 0):g}, {cfg['epochs']} epochs, batch {cfg['batch']}, seed {cfg['seed']}; {summary['steps']} steps in {summary['seconds']:.0f} s on this 2-core CPU
- **Reproduce**: `{command}` (all bundled models: `make models`)
- **Exported accuracy** (fp32/fp16/int8 TFLite): `benchmarks/results/accuracy.txt`
""" + (NOTES[checkpoint.name] + "\n" if checkpoint.name in NOTES else "")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        path = Path(arg)
        path.with_suffix(".md").write_text(card(path))
        print(f"wrote {path.with_suffix('.md')}")
