"""One safe way to read the JSON files users hand us (arch files, tables, run files).

Every problem is a one-line ``ValueError`` naming ``what`` and the path: unreadable, too large, not UTF-8, not
JSON, NaN/Infinity (not JSON, and meaningless in a size or a latency), or nested deeper than any of our formats
(json's recursive parser would otherwise raise RecursionError on e.g. 100000 nested lists).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_BYTES = 64 * 2**20  # shipped tables are < 100 KB, arch files a few KB
MAX_DEPTH = 32  # our formats nest at most ~5 levels (free-form meta included)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def nesting_depth(obj: Any) -> int:
    """Depth of nested lists/dicts (a scalar is 0), iteratively: safe on any depth."""
    depth, stack = 0, [(obj, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            depth = max(depth, level)
            stack.extend((c, level + 1) for c in children)
    return depth


def parse_json(text: str | bytes, *, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text; ``what`` (e.g. 'arch file runs/a.json') names it in every error."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{what} is not UTF-8 text (byte 0x{text[exc.start]:02x} at offset {exc.start})") from None
    try:
        obj = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise ValueError(f"{what} nests lists/objects too deeply (limit {max_depth})") from None
    except ValueError as exc:  # from _no_constant
        raise ValueError(f"{what} is not JSON: {exc}") from None
    if nesting_depth(obj) > max_depth:
        raise ValueError(f"{what} nests lists/objects too deeply (limit {max_depth})")
    return obj


def read_json(path: str | Path, *, what: str, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Read and parse a JSON file (see :func:`parse_json`); also refuses files over ``max_bytes``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ValueError(f"{what} {path} is {size / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB limit")
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return parse_json(raw, what=f"{what} {path}", max_depth=max_depth)
