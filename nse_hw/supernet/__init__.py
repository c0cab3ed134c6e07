"""The multi-branch weight-sharing supernet: paths, two-path α estimator, BN recalibration, latency model."""

from nse_hw.supernet.bn import recalibrate_bn
from nse_hw.supernet.costs import CostMatrix, LayerTable, SpaceLatency
from nse_hw.supernet.net import Proxy, SuperLayer, SuperNet
from nse_hw.supernet.paths import Path, TwoPath, sample_path, sample_two_path, subset_prob, uniform_path

__all__ = ["CostMatrix", "LayerTable", "Path", "Proxy", "SpaceLatency", "SuperLayer", "SuperNet", "TwoPath",
           "recalibrate_bn", "sample_path", "sample_two_path", "subset_prob", "uniform_path"]
