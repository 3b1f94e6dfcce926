"""`sdeploy train MODEL --data DIR -o CKPT`."""
from __future__ import annotations

from pathlib import Path

import click

from .common import print_json, stderr, stdout


@click.command()
@click.argument("model")
@click.option("--data", required=True, help="ImageFolder tree (class per sub-folder), or 'digits' (bundled).")
@click.option("--val", type=click.Path(path_type=Path), help="Validation ImageFolder (default: hold out 15%).")
@click.option("--input-size", default=64, show_default=True)
@click.option("--epochs", default=30, show_default=True)
@click.option("--batch", default=64, show_default=True)
@click.option("--lr", type=float, help="Peak learning rate (default: 0.5 * batch / 1024, the paper's, scaled).")
@click.option("--weight-decay", default=4e-5, show_default=True)
@click.option("--label-smoothing", default=0.0, show_default=True,
              help="Cross-entropy label smoothing; bounds logit growth, which keeps int8 calibration ranges sane.")
@click.option("--seed", default=0, show_default=True)
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Fine-tune from this checkpoint.")
@click.option("--max-steps", type=int, help="Stop after this many steps (smoke runs).")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True)
def train(model, data, val, input_size, epochs, batch, lr, weight_decay, label_smoothing, seed, checkpoint, max_steps, output, as_json):
    """Train or fine-tune MODEL on the CPU and write a checkpoint with its metadata and training curve."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..extras import require

    require("train", "sdeploy train")
    from ..train import TrainConfig, train as run_train

    cfg = TrainConfig(model=model, data=data, val=val, output=output, input_size=input_size, epochs=epochs,
                      batch=batch, lr=lr, weight_decay=weight_decay, label_smoothing=label_smoothing, seed=seed, checkpoint=checkpoint,
                      max_steps=max_steps)
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeRemainingColumn(), console=stderr, transient=True) as bar:
        task = bar.add_task(f"training {model}", total=None, info="")

        def update(state):
            info = f"epoch {state['epoch']}/{state['epochs']}"
            info += f" loss {state['loss']:.3f}" if "loss" in state else f" val top-1 {state['val_top1']:.2%}"
            bar.update(task, total=state["total"], completed=state["step"], info=info)

        summary = run_train(cfg, progress=update)
    if as_json:
        print_json(summary.to_dict())
    else:
        stdout.print(f"{output}: val top-1 {summary.val_top1:.2%} after {summary.steps} steps "
                     f"({summary.seconds:.0f} s)")
