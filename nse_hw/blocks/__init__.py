"""Blocks: one builder signature for every op, layers, and whole networks from arch files."""

from nse_hw.blocks.net import Classifier, Head, MultiBranch, Net, build_network
from nse_hw.blocks.ops import BUILDERS, build_op, conv, mbconv, op_args, rec

__all__ = ["BUILDERS", "Classifier", "Head", "MultiBranch", "Net", "build_network", "build_op", "conv",
           "mbconv", "op_args", "rec"]
