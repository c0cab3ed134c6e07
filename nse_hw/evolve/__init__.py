"""The NSE search loop under a latency budget, and a random-search baseline in the same space and budget."""

from nse_hw.evolve.budget import DEFAULT_DEVICE, Budget, check_budget, parse_latency, resolve_table, table_for_device
from nse_hw.evolve.config import PRESETS, SearchConfig, load_search_config, preset_path
from nse_hw.evolve.context import Context
from nse_hw.evolve.nse import LoopState, nse_search
from nse_hw.evolve.pareto import Candidate, Subspaces, kept_ops, pareto_front
from nse_hw.evolve.random_search import random_search, sample_uniform
from nse_hw.evolve.rundir import RunDir, RunInfo
from nse_hw.evolve.sampling import find_tilt, sample_in_window

__all__ = [
    "DEFAULT_DEVICE", "PRESETS", "Budget", "Candidate", "Context", "LoopState", "RunDir", "RunInfo", "SearchConfig",
    "Subspaces", "check_budget", "find_tilt", "kept_ops", "load_search_config", "nse_search", "pareto_front",
    "parse_latency", "preset_path", "random_search", "resolve_table", "sample_in_window", "sample_uniform",
    "table_for_device",
]
