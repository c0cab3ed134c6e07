"""Where the repository's shipped data lives (configs/, latency_tables/).

nse-hw is installed editable (`pip install -e .`), so these resolve to the checkout.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "configs"
SPACES = CONFIGS / "spaces"
TABLES = REPO_ROOT / "latency_tables"
