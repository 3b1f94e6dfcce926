"""The model zoo: name -> spec -> torch module, timm-style.

Importing this module must not import torch (`sdeploy zoo` prints in well under a second): specs are plain
data from zoo/configs.py, and each family's torch builder is imported only inside `create_model`.

Names: `shufflenet_v1_g{g}_{w}x` (+ `_noshuffle`, paper Table 3's ablation, for g > 1; + `_se`, Table 5's SE
variant), `shufflenet_v2_{w}x`, `mobilenet_v1_{w}x`. Keyword options override a spec's (e.g.
`create_model("shufflenet_v1_g3_1.0x", shuffle="megvii")` for Megvii's official weights).
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import re
from dataclasses import dataclass, field

from ..errors import UserError
from . import configs

FAMILIES = ("shufflenet_v1", "shufflenet_v2", "mobilenet_v1")
_BUILDERS = {  # family -> "module:function" inside shufflenet_deploy.zoo, imported on first use (torch)
    "shufflenet_v1": "shufflenet_v1:build",
    "shufflenet_v2": "shufflenet_v2:build",
    "mobilenet_v1": "mobilenet_v1:build",
}


@dataclass(frozen=True)
class PaperFigure:
    """A published complexity figure and the convention it matches ("conv" only, or "conv+fc")."""

    macs_m: float
    convention: str
    source: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    options: dict = field(hash=False)
    paper: PaperFigure | None = None

    @property
    def paper_macs_m(self) -> float | None:
        return self.paper.macs_m if self.paper else None

    @property
    def paper_convention(self) -> str | None:
        return self.paper.convention if self.paper else None

    @property
    def classifier(self) -> str:
        """Module name of the final Linear layer (its weight's shape gives num_classes)."""
        return configs.CLASSIFIERS[self.family]

    def config(self, **overrides):
        return configs.make_config(self.family, {**self.options, **overrides})

    def default_preprocessing(self, input_size: int = 224):
        from ..data.preprocess import Preprocessing

        return Preprocessing.imagenet(input_size)


# Figures the papers give for these exact models. Table 1 counts convolutions only; the width-scaled
# figures (Tables 2/5/8) match convolutions + FC; see shufflenet_deploy/complexity.py.
_PAPER = {
    "shufflenet_v1_g1_1.0x": PaperFigure(143, "conv", "ShuffleNet v1 Table 1"),
    "shufflenet_v1_g2_1.0x": PaperFigure(140, "conv", "ShuffleNet v1 Table 1"),
    "shufflenet_v1_g3_1.0x": PaperFigure(137, "conv", "ShuffleNet v1 Table 1"),
    "shufflenet_v1_g4_1.0x": PaperFigure(133, "conv", "ShuffleNet v1 Table 1"),
    "shufflenet_v1_g8_1.0x": PaperFigure(137, "conv", "ShuffleNet v1 Table 1"),
    "shufflenet_v1_g3_0.5x": PaperFigure(38, "conv+fc", "ShuffleNet v1 Tables 2/8"),
    "shufflenet_v1_g4_0.5x": PaperFigure(38, "conv+fc", "ShuffleNet v1 Table 5"),
    "shufflenet_v1_g3_1.5x": PaperFigure(292, "conv+fc", "ShuffleNet v1 Table 5"),
    "shufflenet_v1_g3_2.0x": PaperFigure(524, "conv+fc", "ShuffleNet v1 Table 5"),
    "shufflenet_v1_g3_2.0x_se": PaperFigure(527, "conv+fc", "ShuffleNet v1 Table 5"),
    "mobilenet_v1_1.0x": PaperFigure(569, "conv+fc", "ShuffleNet v1 Table 5"),
    "mobilenet_v1_0.75x": PaperFigure(325, "conv+fc", "ShuffleNet v1 Table 5"),
    "mobilenet_v1_0.5x": PaperFigure(149, "conv+fc", "ShuffleNet v1 Table 5"),
    "mobilenet_v1_0.25x": PaperFigure(41, "conv+fc", "ShuffleNet v1 Table 5"),
    "shufflenet_v2_0.5x": PaperFigure(41, "conv+fc", "ShuffleNet v2 paper"),
    "shufflenet_v2_1.0x": PaperFigure(146, "conv+fc", "ShuffleNet v2 paper"),
    "shufflenet_v2_1.5x": PaperFigure(299, "conv+fc", "ShuffleNet v2 paper"),
    "shufflenet_v2_2.0x": PaperFigure(591, "conv+fc", "ShuffleNet v2 paper"),
}


def _spec(name: str, family: str, **options) -> ModelSpec:
    return ModelSpec(name, family, options, _PAPER.get(name))


def _all_specs() -> dict[str, ModelSpec]:
    specs = []
    for g in configs.V1_GROUPS:
        for w in configs.V1_WIDTHS:
            base = f"shufflenet_v1_g{g}_{w}x"
            specs.append(_spec(base, "shufflenet_v1", groups=g, width=w, shuffle="paper", se=False))
            if g > 1:  # with g=1 the shuffle is the identity, so there is nothing to ablate
                specs.append(_spec(f"{base}_noshuffle", "shufflenet_v1", groups=g, width=w, shuffle="none", se=False))
            specs.append(_spec(f"{base}_se", "shufflenet_v1", groups=g, width=w, shuffle="paper", se=True))
    specs += [_spec(f"shufflenet_v2_{w}x", "shufflenet_v2", width=w) for w in configs.V2_CHANNELS]
    specs += [_spec(f"mobilenet_v1_{w}x", "mobilenet_v1", width=w) for w in configs.MOBILENET_WIDTHS]
    return {s.name: s for s in specs}


_SPECS = _all_specs()


def list_models(pattern: str | None = None) -> list[str]:
    """Every registered name (registry order: family, then g, then width), optionally fnmatch-filtered."""
    return [n for n in _SPECS if pattern is None or fnmatch.fnmatchcase(n, pattern)]


def get_spec(name: str) -> ModelSpec:
    try:
        return _SPECS[name]
    except KeyError:
        raise _unknown(name) from None


def _unknown(name: str) -> UserError:
    """Say why a name is unknown: a g/width that does not exist, or a typo (closest names)."""
    v1 = re.fullmatch(r"shufflenet_v1_g(\d+)_([\d.]+)x(_noshuffle|_se)?", name)
    other = re.fullmatch(r"(shufflenet_v2|mobilenet_v1)_([\d.]+)x", name)
    try:
        if v1:
            configs.shufflenet_v1_config(int(v1[1]), float(v1[2]))
            if v1[3] == "_noshuffle":
                return UserError(f"unknown model {name!r}: g=1 has no shuffle to remove", "use g2, g3, g4 or g8")
        elif other:
            configs.make_config(other[1], {"width": float(other[2])})
    except UserError as err:
        return UserError(f"unknown model {name!r}: {err.message}", err.hint)
    except ValueError:
        pass
    close = difflib.get_close_matches(name, list(_SPECS), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "`sdeploy zoo` lists every model"
    return UserError(f"unknown model {name!r}", hint)


def create_model(name: str, *, num_classes: int = 1000, **options):
    """A freshly initialised torch module for `name`; `options` override the spec's architecture options."""
    spec = get_spec(name)
    config = spec.config(**options)
    if num_classes < 1:
        raise UserError(f"num_classes must be at least 1, not {num_classes}")
    module, attr = _BUILDERS[spec.family].split(":")
    build = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
    return build(config, num_classes=num_classes)
