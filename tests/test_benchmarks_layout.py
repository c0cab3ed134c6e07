"""benchmarks/ stays findable: every script is in the index, and every benchmarks/ path the repository names exists."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
TOPICS = ("latency", "phones", "search", "train-export", "deployment", "reliability")
PATH = re.compile(r"benchmarks/[\w./{},*$\[\]-]*")


def _tracked_text() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    return [ROOT / f for f in out if f.endswith((".md", ".py", ".yaml", ".toml", ".sh")) and (ROOT / f).exists()]


def test_each_topic_folder_holds_its_results_file():
    for t in TOPICS:
        assert (BENCH / t / f"RESULTS-{t}.md").is_file(), t
    assert not list(BENCH.glob("*.py")) and not list(BENCH.glob("RESULTS-*.md"))  # nothing left at the top


def test_every_script_is_in_the_index_under_its_topic():
    index = (BENCH / "README.md").read_text()
    sections = dict(re.findall(r"^## (\S+)/\n(.*?)(?=^## |\Z)", index, flags=re.M | re.S))
    for t in TOPICS:
        for script in (BENCH / t).glob("*.py"):
            assert f"`{script.name}`" in sections[t], f"{t}/{script.name} is not in benchmarks/README.md under {t}/"


def test_every_benchmarks_path_named_in_the_repository_exists():
    missing = []
    for f in _tracked_text():
        for m in PATH.finditer(f.read_text(errors="replace")):
            p = m.group(0).rstrip(".,:]")
            if not any(c in p for c in "{*$[") and not (ROOT / p).exists():  # {a,b}, globs, $VARS, [-X]: patterns
                missing.append(f"{f.relative_to(ROOT)}: {p}")
    assert not missing, "\n".join(missing)
