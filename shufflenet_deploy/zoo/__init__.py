"""The model zoo. `registry` is torch-free; the per-family builders import torch when a model is created."""
from __future__ import annotations

from .registry import ModelSpec, PaperFigure, create_model, get_spec, list_models

__all__ = ["ModelSpec", "PaperFigure", "create_model", "get_spec", "list_models"]
