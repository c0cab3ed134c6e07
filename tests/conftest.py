"""Shared fixtures. Tests mirror the package layout (tests/space, tests/blocks, ...)."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import torch

from nse_hw.space import SearchSpace, load_space

torch.set_num_threads(1)
# The tests' nse-hw jobs (in-process and subprocesses) share a registry of their own: a job the user runs
# meanwhile must not change their thread counts, nor theirs the user's (nse_hw.cpushare).
os.environ["NSE_HW_JOBS_DIR"] = tempfile.mkdtemp(prefix="nse-hw-test-jobs-")


@pytest.fixture(scope="session")
def tiny_space() -> SearchSpace:
    return load_space("tiny")


@pytest.fixture(scope="session")
def nse27() -> SearchSpace:
    return load_space("nse27-proxyless224")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
