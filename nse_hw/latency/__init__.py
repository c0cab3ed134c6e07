"""Latency tables: keys, load/save/lookup with provenance, prediction and differentiable expectation."""

from nse_hw.latency.expected import (
    LayerCosts,
    exclusive_prod,
    expected_latency,
    expected_layer_latency,
    latency_penalty,
)
from nse_hw.latency.keys import (
                                 Component,
                                 KeySpec,
                                 arch_components,
                                 classifier_key,
                                 head_key,
                                 join_counts,
                                 join_key,
                                 op_key,
                                 out_shape,
                                 parse_key,
                                 space_keys,
)
from nse_hw.latency.predict import Prediction, calibrate, predict, predict_components, predict_model
from nse_hw.latency.table import TABLE_FORMAT, LatencyTable, load_table, resolve_table_path, table_for_device

__all__ = [
    "TABLE_FORMAT", "Component", "KeySpec", "LatencyTable", "LayerCosts", "Prediction", "arch_components",
    "calibrate", "classifier_key", "exclusive_prod", "expected_latency", "expected_layer_latency", "head_key",
    "join_counts", "join_key", "latency_penalty", "load_table", "op_key", "out_shape", "parse_key", "predict",
    "predict_components", "predict_model",
    "resolve_table_path", "space_keys", "table_for_device",
]
