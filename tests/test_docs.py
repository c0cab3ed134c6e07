"""The docs site builds with `mkdocs build --strict`: a broken link, a missing page or figure, or a stale API name
fails here (and so in CI), not on a reader's screen."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _build(site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(site)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        pytest.fail("mkdocs is not installed: install the docs extra (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    res = _build(out)
    assert res.returncode == 0, f"mkdocs build --strict failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return out


def _text(path: Path) -> str:
    """A page's visible text, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8"))).split())


@pytest.mark.slow
def test_every_results_file_is_a_page_with_its_figures(site: Path) -> None:
    sources = sorted(p for pat in ("RESULTS-*.md", "NOTES-*.md") for p in (ROOT / "benchmarks").rglob(pat))
    assert sources, "no benchmarks/**/RESULTS-*.md"
    for src in sources:
        topic = src.stem.split("-", 1)[1]
        page = site / "results" / (topic if src.stem.startswith("RESULTS-") else f"notes-{topic}") / "index.html"
        assert page.is_file(), f"{src.relative_to(ROOT)} has no page"
        headings = [" ".join(re.sub(r"[`*]", "", line.lstrip("#")).split())
                    for line in src.read_text(encoding="utf-8").splitlines() if re.match(r"#{1,4} ", line)]
        text = _text(page)
        assert headings and all(h in text for h in headings), \
            f"{page} lacks headings of {src.name}: {[h for h in headings if h not in text]}"
    figures = {p.name for p in (site / "results").rglob("*.png")}
    named = {Path(m).name for src in sources for m in re.findall(r"`([^`\s]+\.png)`", src.read_text("utf-8"))
             if "$" not in m}
    assert named and named <= figures, f"figures named but not shown: {sorted(named - figures)}"


@pytest.mark.slow
def test_cli_page_lists_every_command(site: Path) -> None:
    from nse_hw.cli import cli

    text = _text(site / "reference" / "cli" / "index.html")
    for name, cmd in cli.commands.items():
        assert f"nse-hw {name}" in text, name
        for sub in getattr(cmd, "commands", {}):
            assert f"nse-hw {name} {sub}" in text, f"{name} {sub}"


@pytest.mark.slow
def test_api_page_renders_every_exported_name(site: Path) -> None:
    import nse_hw

    html = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    missing = [n for n in getattr(nse_hw, "__all__", []) if not n.startswith("_") and f'id="nse_hw.{n}"' not in html]
    assert not missing, (f"nse_hw.__all__ names {missing} but the API page does not render them (mkdocstrings reads "
                         "the package statically: each name must be imported in nse_hw/__init__.py, e.g. under "
                         "`if TYPE_CHECKING:`, and __all__ must be a literal list)")


def test_docs_show_the_readme_commands_as_they_are() -> None:
    """docs/index.md and getting-started.md repeat the README's two commands: they must not drift from it."""
    first_two = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)[:2]
    assert len(first_two) == 2 and first_two[0].startswith("bash scripts/setup.sh")
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert re.findall(r"```bash\n(.*?)```", index, re.S)[:2] == first_two
    started = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    assert all(cmd in started for cmd in first_two)
