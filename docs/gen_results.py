"""Build-time pages (mkdocs-gen-files): one results page per benchmarks/**/RESULTS-*.md (and NOTES-*.md).

Found by glob, so moving a results file into a topic folder changes nothing here. Each page is the file's text
as it is, with every figure it names in prose (a backticked `*.png` path) shown right after that paragraph,
beside the command that made it; the PNG is copied next to the page. benchmarks/README.md, when there is one,
follows the index of pages. A named figure or a link target that does not exist fails the build, so a stale
results file cannot build quietly.
"""

from __future__ import annotations

import re
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
OUT = Path("results")
PNG = re.compile(r"`([^`\s]+\.png)`")
ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.) ")
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def topic(path: Path) -> str:
    """A results file's topic: RESULTS-search.md (in benchmarks/search/, or flat before the per-topic layout) ->
    'search'."""
    return path.stem.split("-", 1)[1]


def page_name(path: Path) -> str:
    return f"{topic(path)}.md" if path.stem.startswith("RESULTS-") else f"notes-{topic(path)}.md"


def find_png(ref: str, source: Path) -> Path:
    """A figure named in `source`: as a repo path, relative to its file, or (after a move) by name under benchmarks/."""
    for cand in (ROOT / ref, source.parent / ref):
        if cand.is_file():
            return cand
    by_name = sorted(BENCH.rglob(Path(ref).name))
    if len(by_name) == 1:
        return by_name[0]
    raise FileNotFoundError(f"{source.relative_to(ROOT)} names the figure {ref!r}, which is not under benchmarks/")


def blocks(text: str) -> list[tuple[str, bool]]:
    """The text as (block, is_code) chunks split at blank lines, fenced code kept whole."""
    out: list[tuple[str, bool]] = []
    cur: list[str] = []
    in_code = False
    for line in text.splitlines():
        if FENCE.match(line):
            if not in_code and cur:
                out.append(("\n".join(cur), False))
                cur = []
            cur.append(line)
            if in_code:
                out.append(("\n".join(cur), True))
                cur = []
            in_code = not in_code
        elif not in_code and not line.strip():
            if cur:
                out.append(("\n".join(cur), False))
                cur = []
        else:
            if not in_code and cur and ITEM.match(line) and not ITEM.match(cur[-1]) and not cur[-1].startswith(
                    (" ", "#")):  # GitHub starts a list right after a paragraph line; Python-Markdown needs a gap
                out.append(("\n".join(cur), False))
                cur = []
            cur.append(line)
    if cur:
        out.append(("\n".join(cur), in_code))
    return out


def render(source: Path, pages: dict[Path, str], *, demote: int = 0,
           figures: bool = True) -> tuple[str, list[tuple[Path, str]]]:
    """The page text and the figures to copy beside it; ``demote`` pushes every heading down that many levels."""
    shown: dict[Path, str] = {}
    parts = []
    for block, is_code in blocks(source.read_text(encoding="utf-8")):
        if not is_code:
            block = LINK.sub(lambda m: _link(m, source, pages), block)
            block = re.sub(r"^(#+) ", lambda h: "#" * demote + h.group(1) + " ", block, flags=re.M)
        parts.append(block)
        if is_code or not figures:
            continue
        for ref in PNG.findall(block):
            png = find_png(ref, source)
            if png in shown:
                continue
            shown[png] = "fig/" + png.relative_to(ROOT).as_posix()
            parts.append(f"![{png.name}]({shown[png]})\n/// caption\n`{ref}`\n///")
    return "\n\n".join(parts) + "\n", [(p, name) for p, name in shown.items()]


def _link(m: re.Match[str], source: Path, pages: dict[Path, str]) -> str:
    """A link to another results file becomes a link to its page; a link to any other file of the repository
    becomes its text (the docs hold no copy of it); a link to nothing fails the build."""
    text, target = m.group(1), m.group(2)
    if re.match(r"^[a-z]+://|^#|^mailto:", target):
        return m.group(0)
    path, _, anchor = target.partition("#")
    resolved = (source.parent / path).resolve()
    if resolved in pages:
        return f"[{text}]({pages[resolved]}{'#' + anchor if anchor else ''})"
    if resolved.exists():
        return text
    raise FileNotFoundError(f"{source.relative_to(ROOT)} links to {target!r}, which does not exist")


def title(source: Path) -> str:
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return source.stem


def main() -> None:
    sources = sorted(p for pat in ("RESULTS-*.md", "NOTES-*.md") for p in BENCH.rglob(pat))
    if not sources:
        raise FileNotFoundError("no benchmarks/**/RESULTS-*.md found: the results pages would be empty")
    pages = {p.resolve(): page_name(p) for p in sources}
    if len(set(pages.values())) != len(pages):
        raise ValueError(f"two results files map to one page: {sorted(pages.values())}")
    index = ["# Results", "",
             "What we measured and how, one page per results file under `benchmarks/` (the page is the file as "
             "committed; each figure it names is shown beside the paragraph that names it). The scripts that "
             "print these figures sit beside the files.", "",
             "| page | file |", "|---|---|"]
    for source in sources:
        text, figures = render(source, pages)
        with mkdocs_gen_files.open(OUT / pages[source.resolve()], "w", encoding="utf-8") as f:
            f.write(text)
        for png, name in figures:
            with mkdocs_gen_files.open(OUT / name, "wb") as f:
                f.write(png.read_bytes())
        index.append(f"| [{title(source)}]({pages[source.resolve()]}) | `{source.relative_to(ROOT)}` |")
    readme = BENCH / "README.md"  # the benchmarks' own index of scripts and data, when there is one
    if readme.is_file():
        body, _ = render(readme, pages, demote=1, figures=False)
        index += ["", re.sub(r"^## .*", "## The scripts behind the figures", body, count=1)]
    with mkdocs_gen_files.open(OUT / "index.md", "w", encoding="utf-8") as f:
        f.write("\n".join(index) + "\n")


main()
