"""sdeploy: take a trained ShuffleNet to an ARM device and measure how far real speed falls from its FLOPs."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "load_model", "list_models", "count_complexity"]


def __getattr__(name):
    # Lazy: `import shufflenet_deploy` must stay cheap (no torch) for the CLI and the device-side tools.
    if name in ("create_model", "list_models"):
        from .zoo import registry

        return getattr(registry, name)
    if name == "load_model":
        from .checkpoints import load_model

        return load_model
    if name == "count_complexity":
        from .complexity import count_complexity

        return count_complexity
    raise AttributeError(name)
