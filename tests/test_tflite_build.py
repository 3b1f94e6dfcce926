"""tflite/build.py: single-op models written without TensorFlow run on the real interpreter and compute the layer."""
from __future__ import annotations

import numpy as np
import pytest

from shufflenet_deploy.tflite import build


@pytest.mark.parametrize("kind,shape,out", [("conv", (1, 7, 5, 32), 24), ("fc", (4, 64), 48)])
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_single_op_models_compute_their_layer(kind, shape, out, precision):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=build.single_op(kind, precision, shape, out))
    interp.allocate_tensors()
    inp, res = interp.get_input_details()[0], interp.get_output_details()[0]
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    if precision == "int8":
        scale, zp = inp["quantization"]
        assert inp["dtype"] == np.int8 and res["dtype"] == np.int8 and scale > 0
        interp.set_tensor(inp["index"], np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8))
    else:
        interp.set_tensor(inp["index"], x)
    interp.invoke()
    y = interp.get_tensor(res["index"]).astype(np.float32)
    if precision == "int8":
        scale, zp = res["quantization"]
        y = (y - zp) * scale
    ref = build.reference(kind, shape, out, x.reshape(-1, shape[-1])).reshape(y.shape)
    tol = 1e-5 if precision == "fp32" else 0.06 * np.abs(ref).max()
    np.testing.assert_allclose(y, ref, atol=tol)
    assert np.abs(ref).max() > 0.1  # the check is not vacuous


def test_peak_kernels_build_without_tensorflow(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from shufflenet_deploy.bench import peak; files = peak.build_all(sys.argv[1]); "
            "print(len(files), 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4", "False"]


def test_peak_kernels_built_by_several_threads_at_once_are_whole(tmp_path):
    """A fleet sweep's device threads build the same kernels into one cache at the same moment: each writer has
    its own temp file, so none fails on another's rename and every file is the whole kernel."""
    from concurrent.futures import ThreadPoolExecutor

    from shufflenet_deploy.bench import peak

    with ThreadPoolExecutor(4) as pool:
        built = list(pool.map(lambda _: peak.build_all(tmp_path / "shared"), range(4)))
    alone = peak.build_all(tmp_path / "alone")
    assert all(b == built[0] for b in built) and len(alone) == 4
    for key, path in alone.items():
        assert built[0][key].read_bytes() == path.read_bytes()
    assert sorted(p.name for p in (tmp_path / "shared" / peak.BUILD).iterdir()) == sorted(p.name for p in alone.values())
