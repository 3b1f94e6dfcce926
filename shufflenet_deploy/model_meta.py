"""`ModelMeta`: what travels with a model (as timm's `PretrainedCfg` does), typed, with one strict reader.

It is stored in our checkpoints (`meta`, checkpoints.py writes it with `to_dict`), attached to a loaded model as
`model.sdeploy_meta`, carried by an export's Source and copied into the manifest. One object instead of a dict
read by key in five modules: a damaged checkpoint's metadata is refused once, here, in one line naming the field.

The input size lives in the preprocessing (`input_size` is its property): the two used to be kept side by side
and reconciled by whoever read them. Torch- and numpy-free (the manifest side of a board reads none of it, but
`sdeploy zoo` may).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from .data.preprocess import Preprocessing
from .errors import UserError
from .sizes import parse as parse_size, to_json
from .validate import Fields

OptionValue = Union[int, float, str, bool]
Options = Mapping[str, OptionValue]


@dataclass(frozen=True)
class ModelMeta:
    model: str  # a zoo name, or a foreign model's file stem
    preprocessing: Preprocessing  # holds the input size and channel count too
    num_classes: int = 1000
    options: Options = field(default_factory=dict)  # the architecture's options (zoo/configs.py), merged with its spec's
    class_names: tuple[str, ...] | None = None
    dataset: str | None = None  # "digits": trained on the bundled set, whose calibration/val splits it then uses

    @property
    def input_size(self):
        """int (square) or (height, width)."""
        return self.preprocessing.input_size

    @property
    def channels(self) -> int:
        return self.preprocessing.channels

    def with_input_size(self, input_size) -> "ModelMeta":
        """The same model at another input size (its resize scaled the same way)."""
        return dataclasses.replace(self, preprocessing=self.preprocessing.with_input_size(parse_size(input_size)))

    def replace(self, **changes: Any) -> "ModelMeta":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The checkpoint's `meta` block (plain JSON types, as weights_only loading requires)."""
        out = {"model": self.model, "options": dict(self.options), "num_classes": self.num_classes,
               "input_size": to_json(self.input_size), "preprocessing": self.preprocessing.to_dict(),
               "class_names": list(self.class_names) if self.class_names is not None else None}
        return {**out, "dataset": self.dataset} if self.dataset else out

    @classmethod
    def from_dict(cls, data: Any, where: str, hint: str = "re-save it from the model") -> "ModelMeta":
        """A checkpoint's `meta` block, checked field by field: one UserError naming WHERE and the field."""
        f = Fields(data, where, hint)
        model = f.text("model")
        if not model:
            raise f.fail("model", model, "a model name")
        num_classes = f.count("num_classes", low=1, high=10**6)
        options = f.scalars("options") or {}
        try:
            size = parse_size(data.get("input_size", 224), "input size in its metadata", minimum=1)
        except UserError as err:
            raise UserError(f"{where}: {err.message}", hint) from None
        pre = Preprocessing.read(f.obj("preprocessing", optional=False), where, hint)
        names = f.texts("class_names")
        if names is not None and len(names) != num_classes:
            raise f.fail("class_names", f"{len(names)} names", f"one per class ({num_classes})")
        return cls(model, pre if pre.input_size == size else pre.with_input_size(size), num_classes, dict(options),
                   tuple(names) if names is not None else None, f.text("dataset", optional=True))
