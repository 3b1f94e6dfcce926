"""Checkpoints -> (model, metadata): our own format and Megvii's official ShuffleNet v1 layout.

Our format is one dict, loadable with `torch.load(weights_only=True)`:
    {"format": "sdeploy-checkpoint", "version": 1, "meta": {...}, "state_dict": {...}, **extra}
where meta is a `ModelMeta` written by its `to_dict` and read back by its strict reader (model_meta.py); it names
the model, so loading needs no flags. Metadata travels with the model as `model.sdeploy_meta` (a ModelMeta).

Other files are plain state_dicts (bare, or under "state_dict"/"model", keys with or without DataParallel's
`module.`, `num_batches_tracked` optional). One with ShuffleNet v1's official module names is taken as
Megvii's release: channel shuffle "megvii" (whatever the options say), BGR 0..255 input, and g/width inferred
from the shapes when no name is given. A bare state_dict of our own paper-convention v1 has the same names and
would be misread: save our models with `save_checkpoint`, which records the convention. A torchvision-layout v2
(the zoo's own names) is named by its shapes too; other state_dicts need the model name, or their own code
(`sdeploy export --module`, export/sources.py).

Every file is read with `torch.load(path, map_location="cpu", weights_only=True)`: a checkpoint can't run code.
"""
from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from .data.preprocess import Preprocessing
from .errors import UserError
from .fileio import atomic_path
from .model_meta import ModelMeta, Options
from .zoo import configs
from .zoo.registry import create_model, get_spec

FORMAT = "sdeploy-checkpoint"
VERSION = 1
_RESERVED = ("format", "version", "meta", "state_dict")
_MEGVII_KEYS = ("first_conv.0.weight", "features.0.branch_main_1.0.weight", "classifier.0.weight")
_SAVE_HINT = "re-save it as plain tensors: torch.save(model.state_dict(), path), or sdeploy's save_checkpoint"


def make_meta(name: str, num_classes: int = 1000, options: Options | None = None,
              preprocessing: Preprocessing | None = None, class_names: list[str] | None = None,
              dataset: str | None = None) -> ModelMeta:
    """The metadata of zoo model NAME (its spec's options and preprocessing unless given)."""
    spec = get_spec(name)
    return ModelMeta(name, preprocessing or spec.default_preprocessing(), int(num_classes),
                     {**spec.options, **(options or {})},
                     tuple(class_names) if class_names is not None else None, dataset)


def load_model(name: str | None = None, checkpoint: str | Path | None = None, *,
               input_size: int | None = None, **options) -> nn.Module:
    """A model in eval mode with `.sdeploy_meta`: from `checkpoint` if given, else freshly initialised `name`."""
    if checkpoint is not None:
        return load_checkpoint(checkpoint, name, input_size=input_size, **options)[0]
    if name is None:
        raise UserError("no model given", "pass a zoo model name or a checkpoint file")
    num_classes = options.pop("num_classes", 1000)
    model = create_model(name, num_classes=num_classes, **options)
    preprocessing = get_spec(name).default_preprocessing(input_size or 224)
    return _attach(model, make_meta(name, num_classes, options, preprocessing))


def load_checkpoint(path: str | Path, name: str | None = None, *, input_size: int | None = None,
                    **options) -> tuple[nn.Module, ModelMeta]:
    """(model in eval mode, meta) from our format or a (Megvii) state_dict; `options` override the architecture."""
    path = Path(path)
    obj = _read(path)
    num_classes = options.pop("num_classes", None)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        meta, state = _ours(obj, path, name)
        meta = meta.replace(options={**meta.options, **options})
    else:
        state = _state_dict(obj, path)
        meta = _meta_for_state_dict(state, path, name, options)
    if num_classes is not None:  # a deliberate override; a wrong one is reported as a shape mismatch
        meta = meta.replace(num_classes=num_classes)
    if input_size is not None:
        meta = meta.with_input_size(input_size)
    model = create_model(meta.model, num_classes=meta.num_classes, **meta.options)
    _load_state(model, state, path, meta.model)
    return _attach(model, meta), meta


def save_checkpoint(path: str | Path, model: nn.Module, meta: ModelMeta, extra: dict | None = None) -> Path:
    """Write our format atomically; `extra` (e.g. epoch, metrics) must hold only primitives and tensors."""
    clash = sorted(set(extra or {}) & set(_RESERVED))
    if clash:
        raise ValueError(f"extra may not use the reserved keys {clash}")
    obj = {
        "format": FORMAT,
        "version": VERSION,
        "meta": json.loads(json.dumps(meta.to_dict())),  # plain JSON types only, as weights_only requires
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **(extra or {}),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The bare state_dict in PATH (unwrapped, DataParallel prefix stripped), read with weights_only=True: the
    weights of a user's own module (`sdeploy export --module`)."""
    path = Path(path)
    return _state_dict(_read(path), path)


# -- reading --------------------------------------------------------------------------------------------------
def _read(path: Path):
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}", "check the path")
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a directory", "give the .pth/.pt file inside it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error below says more
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types (UnpicklingError, KeyError, EOFError, RuntimeError)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found:
            raise UserError(f"{path} pickles a Python object ({found[1]}); sdeploy loads checkpoints with "
                            "weights_only=True and refuses arbitrary pickles for safety (they can run code)",
                            _SAVE_HINT) from None
        if path.stat().st_size == 0:
            raise UserError(f"{path} is not a PyTorch checkpoint (the file is empty)", _SAVE_HINT) from None
        text = str(err).lower()
        if isinstance(err, EOFError) or any(s in text for s in ("central directory", "unexpected eof", "truncat",
                                                                "failed reading zip", "ran out of input")):
            raise UserError(f"{path} is truncated or damaged ({path.stat().st_size} bytes; torch.load: "
                            f"{str(err).splitlines()[0][:120]})", "copy the checkpoint again, whole") from None
        raise UserError(f"{path} is not a PyTorch checkpoint (torch.load failed: {type(err).__name__})",
                        "give a file written by torch.save: an sdeploy checkpoint or a state_dict") from None


def _ours(obj: dict, path: Path, name: str | None) -> tuple[ModelMeta, dict[str, torch.Tensor]]:
    version = obj.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise UserError(f"{path} is sdeploy checkpoint version {version!r}; this sdeploy reads up to {VERSION}",
                        "upgrade sdeploy")
    raw, state = obj.get("meta"), obj.get("state_dict")
    if not isinstance(raw, dict) or not isinstance(state, dict) or "model" not in raw:
        raise UserError(f"{path} is a damaged sdeploy checkpoint (no meta or state_dict)", "re-save it")
    meta = ModelMeta.from_dict(raw, f"{path} is a damaged sdeploy checkpoint: its meta")
    if name is not None and name != meta.model:
        raise UserError(f"{path} holds {meta.model}, not {name}", "omit the model name: the checkpoint has it")
    return meta, state


def _state_dict(obj, path: Path) -> dict:
    """Unwrap {'state_dict': ...}/{'model': ...} and strip DataParallel's `module.` prefix."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path} holds no state_dict (found {_describe(obj)})",
                        "give an sdeploy checkpoint, a state_dict, or {'state_dict': state_dict}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _describe(obj) -> str:
    if isinstance(obj, dict):
        return f"a dict with keys {', '.join(map(str, list(obj)[:5]))}" if obj else "an empty dict"
    return f"a {type(obj).__name__}"


def _meta_for_state_dict(state: dict, path: Path, name: str | None, options: Options) -> ModelMeta:
    megvii = all(k in state for k in _MEGVII_KEYS)
    if name is None:
        name = _infer_v1_name(state) if megvii else _infer_v2_name(state)
        if name is None:
            raise UserError(f"{path} is a bare state_dict whose shapes fit no zoo model",
                            "pass the model name (`sdeploy zoo` lists them), or build your own model with "
                            "--module net.py:factory --checkpoint FILE")
    spec = get_spec(name)
    megvii = megvii and spec.family == "shufflenet_v1"
    options = dict(options)
    if megvii and spec.options["shuffle"] != "none":
        # Megvii's weights only work under Megvii's shuffle; callers often pass the spec's defaults ("paper")
        options["shuffle"] = "megvii"
    head = state.get(f"{spec.classifier}.weight")
    num_classes = head.shape[0] if head is not None and head.dim() == 2 else 1000
    preprocessing = Preprocessing.megvii() if megvii else spec.default_preprocessing()
    return make_meta(name, num_classes, options, preprocessing)


def _infer_v1_name(state: dict) -> str | None:
    """g and width of an official-layout ShuffleNet v1 from its weight shapes, or None if they fit no zoo entry."""
    try:
        stem = state["first_conv.0.weight"].shape[0]
        c_out = state["features.0.branch_main_1.0.weight"].shape[0] * 4
        groups = c_out // state["features.1.branch_main_1.0.weight"].shape[1]
    except (KeyError, IndexError, ZeroDivisionError):
        return None
    if groups not in configs.V1_GROUPS:
        return None
    suffix = "_se" if "features.0.se.fc1.weight" in state else ""
    for width in configs.V1_WIDTHS:
        cfg = configs.shufflenet_v1_config(groups, width)
        if (cfg.stem, cfg.channels[0]) == (stem, c_out):
            return f"shufflenet_v1_g{groups}_{width}x{suffix}"
    return None


def _infer_v2_name(state: dict) -> str | None:
    """The width of a torchvision-layout ShuffleNet v2 (the zoo's module names) from its weight shapes."""
    try:
        stem = state["conv1.0.weight"].shape[0]
        stages = tuple(state[f"stage{i}.0.branch1.2.weight"].shape[0] * 2 for i in (2, 3, 4))
        last = state["conv5.0.weight"].shape[0]
    except (KeyError, IndexError, AttributeError):
        return None
    for width, channels in configs.V2_CHANNELS.items():
        if (stem, (*stages, last)) == (configs.V2_STEM, channels):
            return f"shufflenet_v2_{width}x"
    return None


def _load_state(model: nn.Module, state: dict, path: Path, name: str) -> None:
    """load_state_dict, but a mismatch is a UserError naming the first offending keys and both shapes."""
    own = model.state_dict()
    state = {**{k: v for k, v in own.items() if k.endswith("num_batches_tracked")}, **state}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {list(state[k].shape)} in the file vs {list(v.shape)} in the model"
              for k, v in own.items() if k in state and state[k].shape != v.shape]
    problems = [f"{len(items)} {what} ({_first(items)})"
                for what, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                    ("shape mismatches", shapes)) if items]
    if problems:
        guess = _infer_v1_name(state)
        if guess and guess != name:
            hint = f"it looks like {guess}"
        elif missing and not unexpected and not shapes:
            hint = "the file lacks those weights: it is partial or damaged; save the whole model's state_dict"
        else:
            hint = "check the model name and --shuffle (see `sdeploy zoo`)"
        raise UserError(f"{path} does not fit {name}: {'; '.join(problems)}", hint)
    model.load_state_dict(state)


def _first(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (", ..." if len(items) > n else "")


def _attach(model: nn.Module, meta: ModelMeta) -> nn.Module:
    model.eval()
    model.sdeploy_meta = meta
    return model
