"""int8 units: the quantiser of `nse-hw export --int8`, cached apart from float ones, LiteRT only."""

import numpy as np
import pytest
from nse_hw.profilers.table_builder import profile_host
from nse_hw.profilers.units import ExportJob, cache_path, check_job_runtime, int8_calibration

from nse_hw.errors import NseError
from nse_hw.latency import load_table, space_keys
from nse_hw.space import load_space
from tests.fixtures.spaces import MICRO_SPACE_YAML

FAST = {"warmup": 2, "runs": 5, "convert_cpus": set(), "progress": False}


def test_int8_jobs_are_other_files_and_litert_only(tmp_path):
    key = "mb_k3_e3|in=8x8x16|out=24|s=2"
    f32, i8 = ExportJob.for_key(key), ExportJob.for_key(key, precision="int8")
    assert f32 != i8 and cache_path(f32, runtime="litert", cache=tmp_path) != cache_path(i8, runtime="litert",
                                                                                          cache=tmp_path)
    assert i8.file_name("litert").endswith("_int8.tflite")
    with pytest.raises(NseError, match="int8 units can be exported for runtime litert or executorch only"):
        check_job_runtime(i8, "onnxruntime")
    with pytest.raises(NseError, match="'int4' is not one of"):
        ExportJob.for_key(key, precision="int4")
    cal = int8_calibration((8, 8, 16), seed=0)
    assert cal.shape == (4, 8, 8, 16) and cal.dtype == np.float32
    np.testing.assert_array_equal(cal, int8_calibration((8, 8, 16), seed=0))


def test_onnxruntime_int8_table_is_refused_before_anything_is_written(tmp_path, tiny_space):
    out = tmp_path / "t.json"
    with pytest.raises(NseError, match="executorch only"):
        profile_host(tiny_space, runtime="onnxruntime", out=out, precision="int8", **FAST)
    assert not out.exists()


@pytest.mark.slow
def test_int8_table_of_the_micro_space(tmp_path):
    (tmp_path / "micro.yaml").write_text(MICRO_SPACE_YAML)
    space = load_space(tmp_path / "micro.yaml")
    out = tmp_path / "i8.json"
    res = profile_host(space, runtime="litert", out=out, cache=tmp_path / "cache", precision="int8", **FAST)
    table = load_table(out, precision="int8")
    assert res.measured == len(space_keys(space)) and list(table.entries) == space_keys(space)
    m = table.meta
    assert (m["precision"], m["dtype"]) == ("int8", "int8") and "per-channel" in m["quantisation"]["weights"]
    from nse_hw.profilers.host import get_runner  # the unit really is int8: int8 input tensor

    path = cache_path(ExportJob.for_key(space_keys(space)[1], precision="int8"), runtime="litert",
                      cache=tmp_path / "cache")
    assert get_runner("litert", threads=1).load(path).input_dtype == "int8"
    with pytest.raises(NseError, match="measured differently: dtype='int8' \\(asked 'float32'\\)"):
        profile_host(space, runtime="litert", out=out, cache=tmp_path / "cache", **FAST)
