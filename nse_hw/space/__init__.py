"""Op grammar, arch files and search spaces (pure data: no torch)."""

from nse_hw.space.arch import (
    ARCH_FORMAT,
    Arch,
    LayerSpec,
    Shape,
    adapt_arch,
    has_identity,
    load_arch,
    out_size,
    save_arch,
)
from nse_hw.space.grammar import SKIP, Layer, Op, format_layer, format_op, parse_layer, parse_op
from nse_hw.space.searchspace import Position, SearchSpace, available_spaces, load_space, space_from_dict

__all__ = [
    "ARCH_FORMAT", "SKIP", "Arch", "adapt_arch", "Layer", "LayerSpec", "Op", "Position", "SearchSpace", "Shape",
    "available_spaces", "format_layer", "format_op", "has_identity", "load_arch", "load_space", "out_size",
    "parse_layer", "parse_op", "save_arch", "space_from_dict",
]
