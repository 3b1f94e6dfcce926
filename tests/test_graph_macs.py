"""export/graph_macs.py: MACs counted from an ONNX graph equal complexity.py's analytic count for every zoo
entry, so the gap report can count any model's MACs from its graph (issue 22's item 3)."""
from __future__ import annotations

import pytest

from shufflenet_deploy.complexity import count_complexity
from shufflenet_deploy.errors import UserError
from shufflenet_deploy.export.graph_macs import count_macs
from shufflenet_deploy.zoo.registry import create_model, list_models


@pytest.mark.parametrize("name", list_models())
def test_graph_count_equals_the_analytic_count_for_every_zoo_entry(name, tmp_path):
    from shufflenet_deploy.export.onnx_export import export_onnx

    size, classes = (64, 48), 10   # non-square, small: every stage still exists, the export stays quick
    export_onnx(create_model(name, num_classes=classes), size, tmp_path / "m.onnx")
    graph, analytic = count_macs(tmp_path / "m.onnx"), count_complexity(name, input_size=size, num_classes=classes)
    assert (graph.conv, graph.total) == (analytic.macs_conv, analytic.macs_total)
    assert graph.fc > 0


def test_an_open_spatial_size_is_one_line(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, "oh", "ow"])
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 3, 3, 3], [0.0] * 8 * 27)
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="stem")], "g", [x], [y], [w])
    with pytest.raises(UserError, match="Conv node 'stem'.*shape of 'x' open") as err:
        count_macs(helper.make_model(graph))
    assert "--input-size" in err.value.hint
    onnx.checker.check_model(helper.make_model(graph))  # a valid graph: the refusal is about the open size only
