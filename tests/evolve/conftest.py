"""Makes tests/fixtures importable (FAKE latency tables and tiny search configs for tests only)."""

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parents[1])
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
