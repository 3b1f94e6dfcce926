"""The strict readers of the export manifest and of a checkpoint's model metadata: every damaged field is one
UserError naming the document and the field, never a traceback later and never a silently accepted nonsense value.
Pure: each case reads a dict (the file round trip is covered by test_bad_inputs' CLI cases)."""
from __future__ import annotations

import copy
import math

import pytest

from shufflenet_deploy.data.preprocess import Preprocessing
from shufflenet_deploy.errors import UserError
from shufflenet_deploy.int8_records import LayerRow
from shufflenet_deploy.manifest import SCHEMA, Manifest
from shufflenet_deploy.model_meta import ModelMeta

ROW = {"depth": 3, "op": "CONV_2D", "tensor": "model/conv;relu", "shape": [1, 8, 8, 24], "scale": 0.02,
       "zero_point": -128, "fp32_tensor": "model/conv;relu", "index": 17, "inputs": [12], "matched": True,
       "snr_db": 31.5, "channel_snr_db": 30.1, "outlier_ratio": 2.3, "rmse_rel": 0.004, "clipped": 0.0001,
       "fp32_min": 0.0, "fp32_max": 5.1, "int8_min": 0.0, "int8_max": 5.1, "snr_drop_db": 1.2}
VERDICT = {"criterion": "agreement", "state": "undecided", "observed": 1.0, "bound": [0.9889, 1.0], "images": 269,
           "needed": 299}
ATTEMPT = {"step": "plain", "calibration": 100, "ranges": "minmax", "float_layers": [], "agreement": 1.0,
           "images": 269, "disagree": 0, "top1": 1.0, "fp32_top1": 1.0, "drop": 0.0, "lost": 0, "gained": 0,
           "decision": "undecided", "verdicts": [VERDICT], "latency_ms": 0.26, "xnnpack_partitions": 1,
           "not_delegated": {}, "dequantize_ops": 0, "met": True, "seconds": 2.1}
REPAIR = {"target": {"agreement_pct": 99.0, "drop_pt": 0.5}, "evaluated_on": "val (269 images)", "attempts": [ATTEMPT],
          "not_tried": {"int16-activations": "whole model only"}, "seconds": 3.0, "applied": "plain",
          "why": "default for trained weights", "decision": "undecided"}
MANIFEST = {"schema": SCHEMA, "status": "ok", "model": "shufflenet_v1_g3_0.5x", "input_size": 64, "num_classes": 10,
            "options": {"groups": 3, "width": 0.5, "shuffle": "paper", "se": False},
            "preprocessing": Preprocessing.imagenet(64).to_dict(), "class_names": [str(d) for d in range(10)],
            "macs": {"total": 3_000_000, "conv": 2_990_000},
            "artifacts": {"fp32": {"file": "model_fp32.tflite", "format": "tflite", "precision": "fp32",
                                   "sha256": "0" * 64}},
            "int8_layers": {"images": "the first 64 of the val split", "rows": [ROW]}, "int8_repair": REPAIR}


def _set(path: str, value):
    def spoil(d):
        *keys, last = path.split(".")
        for k in keys:
            d = d[int(k)] if isinstance(d, list) else d[k]
        if isinstance(d, list):
            d[int(last)] = value
        elif value is KeyError:
            del d[last]
        else:
            d[last] = value
    return spoil


def refused(read, base: dict, damage: tuple, where: str) -> str:
    """READ of a damaged deep copy of BASE raises one UserError line naming WHERE and every word the damage lists."""
    spoil, words = damage
    data = copy.deepcopy(base)
    spoil(data)
    with pytest.raises(UserError) as err:
        read(data)
    line = err.value.one_line()
    assert where in line and "\n" not in line, line
    for word in words:
        assert word in line, (word, line)
    return line


# damage -> the words the one line must hold besides the document's name
MANIFEST_DAMAGE = {
    "input size NaN": (_set("input_size", math.nan), ["input_size"]),
    "input size text": (_set("input_size", "abc"), ["input_size"]),
    "input size negative": (_set("input_size", -64), ["input_size"]),
    "classes zero": (_set("num_classes", 0), ["num_classes"]),
    "classes float": (_set("num_classes", 10.5), ["num_classes"]),
    "options a list": (_set("options", ["groups", 3]), ["options"]),
    "option value an object": (_set("options.groups", {"x": 1}), ["options['groups']"]),
    "preprocessing std zero": (_set("preprocessing.std", [0.0, 0.2, 0.2]), ["preprocessing"]),
    "preprocessing order": (_set("preprocessing.channel_order", "XYZ"), ["preprocessing"]),
    "preprocessing a string": (_set("preprocessing", "imagenet"), ["preprocessing"]),
    "preprocessing resize text": (_set("preprocessing.resize", "256"), ["preprocessing", "resize"]),
    "preprocessing mean a number": (_set("preprocessing.mean", 0.5), ["preprocessing"]),
    "class names numbers": (_set("class_names", [1, 2]), ["class_names"]),
    "fewer classes than names": (_set("num_classes", 7), ["class_names", "10 names", "num_classes is 7"]),
    "macs negative": (_set("macs.total", -5), ["macs", "total"]),
    "artifacts a list": (_set("artifacts", ["model_fp32.tflite"]), ["artifacts"]),
    "artifact escapes": (_set("artifacts.fp32.file", "../../etc/passwd"), ["file"]),
    "sha256 short": (_set("artifacts.fp32.sha256", "abc"), ["sha256"]),
    "int8 rows an object": (_set("int8_layers.rows", {"0": ROW}), ["int8_layers", "rows"]),
    "int8 row scale NaN": (_set("int8_layers.rows.0.scale", math.nan), ["rows[0]", "scale"]),
    "int8 row scale negative": (_set("int8_layers.rows.0.scale", -0.1), ["rows[0]", "scale"]),
    "int8 row clipped negative": (_set("int8_layers.rows.0.clipped", -0.5), ["clipped"]),
    "int8 row snr infinite": (_set("int8_layers.rows.0.snr_db", math.inf), ["snr_db"]),
    "int8 row min beyond float32": (_set("int8_layers.rows.0.fp32_min", -1e39), ["fp32_min"]),
    "int8 row matched without snr": (_set("int8_layers.rows.0.snr_db", None), ["snr_db", "matched"]),
    "int8 row shape text": (_set("int8_layers.rows.0.shape", ["1", "8"]), ["shape"]),
    "int8 row zero point huge": (_set("int8_layers.rows.0.zero_point", 4096), ["zero_point"]),
    "int8 row op missing": (_set("int8_layers.rows.0.op", KeyError), ["op", "missing"]),
    "repair target text": (_set("int8_repair.target", "99%"), ["int8_repair", "target"]),
    "repair agreement over 100": (_set("int8_repair.target.agreement_pct", 150), ["agreement_pct"]),
    "repair attempts missing": (_set("int8_repair.attempts", KeyError), ["attempts", "missing"]),
    "repair applied unknown": (_set("int8_repair.applied", "float-99"), ["applied"]),
    "attempt agreement NaN": (_set("int8_repair.attempts.0.agreement", math.nan), ["attempts[0]", "agreement"]),
    "attempt agreement over 1": (_set("int8_repair.attempts.0.agreement", 99.0), ["agreement"]),
    "attempt more errors than images": (_set("int8_repair.attempts.0.disagree", 300), ["disagree"]),
    "attempt latency negative": (_set("int8_repair.attempts.0.latency_ms", -1.0), ["latency_ms"]),
    "attempt decision unknown": (_set("int8_repair.attempts.0.decision", "maybe"), ["decision"]),
    "attempt float layers text": (_set("int8_repair.attempts.0.float_layers", "conv1"), ["float_layers"]),
    "verdict bound one number": (_set("int8_repair.attempts.0.verdicts.0.bound", [0.9]), ["verdicts[0]", "bound"]),
    "verdict criterion unknown": (_set("int8_repair.attempts.0.verdicts.0.criterion", "speed"), ["criterion"]),
}


@pytest.mark.parametrize("damage", sorted(MANIFEST_DAMAGE))
def test_a_damaged_manifest_is_one_line_naming_the_field(tmp_path, damage):
    refused(lambda d: Manifest.from_dict(d, tmp_path, "exp/manifest.json"), MANIFEST, MANIFEST_DAMAGE[damage],
            "exp/manifest.json")


def test_the_undamaged_manifest_reads_back_typed(tmp_path):
    m = Manifest.from_dict(copy.deepcopy(MANIFEST), tmp_path)
    assert m.preprocessing == Preprocessing.imagenet(64) and m.options["groups"] == 3
    assert m.int8_layers == [LayerRow.from_dict(ROW, "row")] and m.int8_layers[0].inputs == (12,)
    assert m.int8_layers[0].to_dict() == ROW  # the writer's form round-trips
    repair = m.int8_repair
    assert repair.applied_attempt.check.images == 269 and repair.target.text() == "agreement >= 99%, drop <= 0.5 pt"
    assert repair.to_dict() == REPAIR and repair.attempts[0].verdicts[0].needed == 299


META = {"model": "shufflenet_v1_g3_0.25x", "options": {"groups": 3}, "num_classes": 3, "input_size": 64,
        "preprocessing": Preprocessing.imagenet(64).to_dict(), "class_names": ["a", "b", "c"]}
META_DAMAGE = {
    "no model": (_set("model", ""), ["model"]),
    "classes text": (_set("num_classes", "3"), ["num_classes"]),
    "classes missing": (_set("num_classes", KeyError), ["num_classes", "missing"]),
    "classes bool": (_set("num_classes", True), ["num_classes"]),
    "input size zero": (_set("input_size", 0), ["input size"]),
    "option a list": (_set("options.groups", [3]), ["options['groups']"]),
    "preprocessing missing": (_set("preprocessing", KeyError), ["preprocessing", "missing"]),
    "preprocessing scale NaN": (_set("preprocessing.scale", math.nan), ["preprocessing"]),
    "class names too few": (_set("class_names", ["a"]), ["class_names", "one per class"]),
    "dataset a number": (_set("dataset", 7), ["dataset"]),
}


@pytest.mark.parametrize("damage", sorted(META_DAMAGE))
def test_a_damaged_checkpoint_meta_is_one_line_naming_the_field(damage):
    refused(lambda d: ModelMeta.from_dict(d, "ckpt.pt: its meta"), META, META_DAMAGE[damage], "ckpt.pt: its meta")


def test_model_meta_round_trips_and_keeps_the_input_size_in_its_preprocessing():
    meta = ModelMeta.from_dict(copy.deepcopy(META), "meta")
    assert ModelMeta.from_dict(meta.to_dict(), "meta") == meta
    bigger = meta.with_input_size(96)
    assert bigger.input_size == bigger.preprocessing.input_size == 96 and meta.input_size == 64
    # a stored input size that differs from its preprocessing's (older checkpoints) wins, with the resize scaled
    assert ModelMeta.from_dict({**META, "input_size": 128}, "meta").preprocessing.resize == 146


INFO = {"key": "shufflenet_v1_g3_0.5x@64", "name": "shufflenet_v1_g3_0.5x", "input_size": 64, "num_classes": 10,
        "options": {"groups": 3}, "macs": {"total": 3_000_000, "conv": 2_990_000}, "params": 250_000,
        "macs_source": "export manifest (complexity.py, conv+FC)", "graph": "lowered", "converter": {"onnx2tf": "1.29"}}
RESULT = {"device": "local", "model": "shufflenet_v1_g3_0.5x", "precision": "int8", "threads": 1,
          "latency_ms": {"p50": 0.4}, "model_info": INFO}
INFO_DAMAGE = {
    "macs negative": (_set("model_info.macs.total", -28), ["model_info: macs", "total"]),
    "macs NaN": (_set("model_info.macs.conv", math.nan), ["conv"]),
    "input size zero": (_set("model_info.input_size", 0), ["input_size"]),
    "key missing": (_set("model_info.key", KeyError), ["key", "missing"]),
    "converter a number": (_set("model_info.converter.onnx2tf", 1.29), ["converter"]),
    "options nested": (_set("model_info.options.groups", [3]), ["options"]),
}


@pytest.mark.parametrize("damage", sorted(INFO_DAMAGE))
def test_a_damaged_model_info_in_a_bench_result_is_one_line(damage):
    from shufflenet_deploy.bench.results import BenchResult

    refused(lambda d: BenchResult.from_dict(d, "bench.json: results[0]"), RESULT, INFO_DAMAGE[damage],
            "bench.json: results[0]: model_info")


def test_model_info_round_trips_through_a_bench_result():
    from shufflenet_deploy.bench.results import BenchResult

    result = BenchResult.from_dict(copy.deepcopy(RESULT))
    assert result.model_info.macs_total == 3_000_000 and result.model_info.converter == {"onnx2tf": "1.29"}
    assert result.to_dict()["model_info"] == INFO
