"""Make the int8 repair's proof model: a trained ShuffleNet with activation outlier channels, same fp32 function.

Activation outliers (a few channels whose values are far larger than the rest of their tensor) are a known cause
of int8 damage: TFLite quantizes each activation tensor with ONE scale (per tensor), so the outlier channels set
the grid and every other channel of that tensor keeps only a few int8 steps. Models trained without weight decay
grow them by themselves; here they are made on purpose and exactly, so the damage is reproducible on every CPU:
in the chosen units, the first pointwise conv's BN scales channel c by S (gamma and beta x S; ReLU is positively
homogeneous, so its output channel is exactly S times larger) and the depthwise conv that reads that channel
(after the channel shuffle) divides its weights by S. The fp32 function is unchanged (up to float rounding);
only the activation ranges change: the inverse of cross-layer equalization (Nagel et al., 2019, "Data-Free
Quantization Through Weight Equalization and Bias Correction").

    python scripts/make_int8_outlier_model.py models/shufflenet_v1_g3_0.5x_digits64.pt \
        -o models/shufflenet_v1_g3_0.5x_digits64_outliers.pt --units 12,13,14,15 --scale 12

Prints the largest fp32 logit difference between the two models on the bundled val split (it must be tiny).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def add_outliers(model, units: list[int], scale: float, channels: int = 1) -> list[dict]:
    """Scale `channels` channels of each unit's first-pointwise activation by SCALE, compensated in the
    depthwise conv; returns what was changed."""
    changed = []
    for index in units:
        unit = model.features[index]
        bn1, dw = unit.branch_main_1[1], unit.branch_main_1[3]
        mid = bn1.num_features
        positions = torch.arange(mid, dtype=torch.float32).reshape(1, mid, 1, 1)
        after = positions if unit.shuffle_after != 2 else unit.shuffle(positions)  # where channel c lands
        order = after.reshape(-1).long().tolist()
        with torch.no_grad():
            for c in range(channels):
                bn1.weight[c] *= scale
                bn1.bias[c] *= scale
                dw.weight[order.index(c)] /= scale
        changed.append({"unit": index, "channels": list(range(channels)), "scale": scale})
    return changed


def main() -> None:
    from shufflenet_deploy.checkpoints import load_checkpoint, save_checkpoint
    from shufflenet_deploy.data.digits import ensure_digits
    from shufflenet_deploy.data.folders import scan_image_folder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--units", default="12,13,14,15", help="indices into model.features (comma-separated)")
    ap.add_argument("--scale", type=float, default=12.0)
    ap.add_argument("--channels", type=int, default=1)
    args = ap.parse_args()

    model, meta = load_checkpoint(args.checkpoint)
    reference, _ = load_checkpoint(args.checkpoint)
    units = [int(u) for u in args.units.split(",")]
    changed = add_outliers(model, units, args.scale, args.channels)
    pre = meta.preprocessing
    val = scan_image_folder(ensure_digits(pre.hw[0]) / "val")
    x = torch.from_numpy(pre.load_batch(val.paths))
    with torch.inference_mode():
        diff = (model(x) - reference(x)).abs().max().item()
    save_checkpoint(args.output, model, meta, extra={"int8_outliers": {
        "made_from": args.checkpoint.name, "changed": changed, "fp32_max_logit_difference": diff}})
    print(json.dumps({"output": str(args.output), "changed": changed, "fp32_max_logit_difference": diff}))


if __name__ == "__main__":
    main()
