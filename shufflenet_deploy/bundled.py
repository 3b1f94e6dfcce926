"""Where the bundled trained models are: inside an installed wheel (`_models/`, see setup.py) or the source tree.

Kept free of torch and numpy so every command can name the bundled checkpoints.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def models_dir() -> Path:
    """The folder of bundled checkpoints (`*.pt`) and their model cards (`*.md`)."""
    installed = _PACKAGE / "_models"
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / "models"


def default_checkpoint() -> Path:
    """The checkpoint `sdeploy demo` exports: ShuffleNet v1 g3 0.5x, trained on the bundled digits at 64 px."""
    return models_dir() / "shufflenet_v1_g3_0.5x_digits64.pt"
