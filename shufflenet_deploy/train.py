"""`sdeploy train`: train or fine-tune a zoo model on an ImageFolder tree, on the CPU, reproducibly.

Recipe (ShuffleNet paper, section 4): SGD with momentum 0.9, weight decay 4e-5 on conv/FC weights only (none on
BatchNorm and biases), learning rate decayed linearly to 0 over all iterations. The paper's 0.5 at batch 1024
is scaled linearly to our batch (lr = 0.5 * batch / 1024) unless --lr is given. Augmentation is light (random
translation by up to 1/8 of the image, edge-replicated) because the data sets here are small and centred.

Determinism: torch, numpy and the shuffling RNG are seeded and torch runs single-threaded-deterministic where it
can; two runs with the same seed give the same curve on the same machine.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .data.folders import ImageSet, scan_image_folder
from .errors import UserError


@dataclass
class TrainConfig:
    model: str
    data: Path | str  # an ImageFolder tree, or "digits" for the bundled set
    output: Path
    val: Path | None = None
    input_size: int = 64
    epochs: int = 30
    batch: int = 64
    lr: float | None = None
    weight_decay: float = 4e-5
    momentum: float = 0.9
    label_smoothing: float = 0.0  # the paper's recipe has none; bounded logits make int8 calibration robust
    val_fraction: float = 0.15
    seed: int = 0
    checkpoint: Path | None = None  # fine-tune from these weights
    max_steps: int | None = None  # stop early (tests, smoke runs)
    model_options: dict | None = None

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else 0.5 * self.batch / 1024

    def check(self) -> None:
        """Refuse what would crash or silently mislead, before any image is read or a step is taken."""
        from .sizes import MIN_SIDE, parse

        for name, value in (("--epochs", self.epochs), ("--batch", self.batch)):
            if not isinstance(value, int) or value < 1:
                raise UserError(f"{name} must be a positive integer, not {value}", f"e.g. {name} 30")
        if self.max_steps is not None and self.max_steps < 1:
            raise UserError(f"--max-steps must be at least 1, not {self.max_steps}")
        if self.lr is not None and not self.lr > 0:
            raise UserError(f"--lr must be positive, not {self.lr}", "drop --lr to use the paper's, scaled")
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"--label-smoothing must be in [0, 1), not {self.label_smoothing}")
        if not isinstance(parse(self.input_size, minimum=MIN_SIDE), int):
            raise UserError(f"--input-size {self.input_size}: training takes a square size", "e.g. --input-size 64")
        self.input_size = parse(self.input_size)
        out = Path(self.output)
        if out.is_dir():
            raise UserError(f"-o {out} is a folder; training writes one checkpoint file",
                            f"name a file, e.g. -o {out / (self.model + '.pt')}")
        parent = out.resolve().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UserError(f"cannot write the checkpoint {out}: {parent} is not a writable folder",
                            "choose another -o")


def load_split(image_set: ImageSet, pre) -> tuple[np.ndarray, np.ndarray]:
    return pre.load_batch(image_set.paths), np.asarray(image_set.labels, dtype=np.int64)


def _datasets(cfg: TrainConfig):
    """(train ImageSet, val ImageSet, dataset tag). `digits` means the bundled set's train/val splits."""
    if str(cfg.data) == "digits":
        from .data.digits import ensure_digits

        root = ensure_digits(cfg.input_size)
        return scan_image_folder(root / "train"), scan_image_folder(root / "val"), "digits"
    train_set = scan_image_folder(Path(cfg.data), min_size=None)
    if cfg.val is not None:
        val_set = scan_image_folder(Path(cfg.val), what="validation folder")
        if val_set.class_names != train_set.class_names:
            raise UserError(f"validation classes {val_set.class_names[:5]} differ from training classes "
                            f"{train_set.class_names[:5]}", "use folders with the same class sub-folders")
        return train_set, val_set, None
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(train_set))
    n_val = max(1, round(len(order) * cfg.val_fraction))
    if len(order) - n_val < 1:
        raise UserError(f"data folder {cfg.data} has too few images to hold out a validation split",
                        "add images or pass --val DIR")
    return train_set.subset(sorted(order[n_val:])), train_set.subset(sorted(order[:n_val])), None


def _param_groups(model, weight_decay: float):
    """Weight decay on conv/linear weights only: the paper excludes BatchNorm (and biases)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if param.ndim > 1 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _augment(x, rng: np.random.Generator):
    """Random translation by up to size/8 pixels, edge-replicated (the background stays background)."""
    import torch
    import torch.nn.functional as F

    pad = max(1, x.shape[-1] // 8)
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    out = torch.empty_like(x)
    size = x.shape[-1]
    for i, (dy, dx) in enumerate(rng.integers(0, 2 * pad + 1, size=(len(x), 2))):
        out[i] = padded[i, :, dy : dy + size, dx : dx + size]
    return out


def evaluate_logits(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    import torch

    model.eval()
    with torch.inference_mode():
        return np.concatenate([model(torch.from_numpy(x[i : i + batch])).numpy() for i in range(0, len(x), batch)])


@dataclass(frozen=True)
class TrainSummary:
    """What a training run did: stored in the checkpoint (`train`) and printed by `sdeploy train`."""

    val_top1: float
    train_images: int
    val_images: int
    steps: int
    seconds: float
    config: dict[str, object]  # TrainConfig with paths as text
    learning_rate: float | None
    curve: list[dict[str, float | int | None]]  # per epoch: epoch, step, train_loss, val_top1, lr
    skipped: list[list[str]]  # image files that could not be read, with why

    def to_dict(self) -> dict:
        return asdict(self)


def train(cfg: TrainConfig, progress: Callable[[dict], None] = lambda state: None) -> TrainSummary:
    """Train; write the checkpoint (our format, with metadata and the curve); return the summary."""
    import torch
    import torch.nn.functional as F

    from .checkpoints import load_model, make_meta, save_checkpoint
    from .data.preprocess import Preprocessing
    from .zoo.registry import create_model, get_spec

    cfg.check()
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    rng = np.random.default_rng(cfg.seed)
    spec = get_spec(cfg.model)
    train_set, val_set, dataset = _datasets(cfg)
    if len(train_set.class_names) < 2:
        raise UserError(f"the training data has {len(train_set.class_names)} class "
                        f"({', '.join(train_set.class_names) or 'none'}): a classifier needs at least two",
                        "give an ImageFolder tree with one sub-folder per class")
    pre = spec.default_preprocessing().with_input_size(cfg.input_size)
    pre = Preprocessing(**{**pre.to_dict(), "resize": cfg.input_size})  # small images: resize, no crop
    x_train, y_train = load_split(train_set, pre)
    x_val, y_val = load_split(val_set, pre)
    num_classes = len(train_set.class_names)
    options = {**spec.options, **(cfg.model_options or {})}
    if cfg.checkpoint:
        model = load_model(cfg.model, cfg.checkpoint, **options)
        if model.sdeploy_meta.num_classes != num_classes:
            raise UserError(f"checkpoint {cfg.checkpoint} has {model.sdeploy_meta.num_classes} classes, "
                            f"the data has {num_classes}", "fine-tune from a checkpoint with the same classes")
    else:
        model = create_model(cfg.model, num_classes=num_classes, **options)
    optimizer = torch.optim.SGD(_param_groups(model, cfg.weight_decay), lr=cfg.learning_rate,
                                momentum=cfg.momentum, nesterov=True)
    steps_per_epoch = math.ceil(len(x_train) / cfg.batch)
    total = cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total))
    curve, step, started = [], 0, time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(x_train))
        losses = []
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[b * cfg.batch : (b + 1) * cfg.batch]
            x = _augment(torch.from_numpy(x_train[idx]), rng)
            loss = F.cross_entropy(model(x), torch.from_numpy(y_train[idx]), label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
            progress({"epoch": epoch + 1, "epochs": cfg.epochs, "step": step, "total": total, "loss": losses[-1]})
        val_logits = evaluate_logits(model, x_val)
        val_acc = float((val_logits.argmax(1) == y_val).mean())
        curve.append({"epoch": epoch + 1, "step": step, "train_loss": float(np.mean(losses)) if losses else None,
                      "val_top1": val_acc, "lr": schedule.get_last_lr()[0]})
        progress({"epoch": epoch + 1, "epochs": cfg.epochs, "step": step, "total": total, "val_top1": val_acc})
        if step >= total:
            break
    model.eval()
    meta = make_meta(cfg.model, num_classes, options, pre, list(train_set.class_names), dataset)
    summary = TrainSummary(val_top1=curve[-1]["val_top1"], train_images=len(x_train), val_images=len(x_val),
                           steps=step, seconds=round(time.perf_counter() - started, 1),
                           config={k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
                           learning_rate=cfg.learning_rate, curve=curve,
                           skipped=[list(s) for s in train_set.skipped + val_set.skipped])
    save_checkpoint(Path(cfg.output), model, meta, extra={"train": summary.to_dict()})
    return summary
