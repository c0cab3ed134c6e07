"""Pareto fronts over (latency, -accuracy) and the subspace update: keep, retire, refill."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nse_hw.space import Layer, Op, format_layer, parse_layer, parse_op


@dataclass
class Candidate:
    """A scored architecture: its choices per searchable layer, latency (ms, calibrated), held-out top-1."""

    choices: list[Layer]
    ms: float
    acc: float = float("nan")
    kind: str = "window"  # 'window' (sampled in the window), 'extra' (cheaper, never kept), 'previous' (last front)

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [format_layer(c) for c in self.choices], "ms": round(self.ms, 4),
                "acc": round(self.acc, 5), "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        return cls([parse_layer(x) for x in d["layers"]], float(d["ms"]), float(d["acc"]), str(d["kind"]))


def pareto_front(cands: list[Candidate]) -> list[int]:
    """Indices of the non-dominated candidates (lower latency, higher accuracy), fastest first.

    Exact duplicates in (ms, acc) keep their first occurrence only.
    """
    order = sorted(range(len(cands)), key=lambda i: (cands[i].ms, -cands[i].acc, i))
    front, best = [], -float("inf")
    for i in order:
        if cands[i].acc > best:
            front.append(i)
            best = cands[i].acc
    return front


def kept_ops(front: list[Candidate], layers: int) -> list[set[Op]]:
    """Per layer, the union of the ops used by front architectures that may be kept (not 'extra')."""
    keep: list[set[Op]] = [set() for _ in range(layers)]
    for c in front:
        if c.kind == "extra":
            continue
        for j, layer in enumerate(c.choices):
            keep[j].update(layer)
    return keep


@dataclass
class Subspaces:
    """Per searchable layer: the current subspace (ordered) and the queue of pool ops still waiting."""

    current: list[list[Op]]
    queue: list[list[Op]]
    retired: list[list[Op]] = field(default_factory=list)  # budget-infeasible, never used

    def refill(self, keep: list[set[Op]], size: int) -> Subspaces:
        """Keep ``keep[l]`` (in current order), drop the rest for good, top up to ``size`` from the queue."""
        cur, que = [], []
        for sub, q, k in zip(self.current, self.queue, keep, strict=True):
            new = [o for o in sub if o in k]
            take = max(0, size - len(new))
            cur.append(new + q[:take])
            que.append(q[take:])
        return Subspaces(cur, que, self.retired)

    def to_dict(self) -> dict[str, Any]:
        def txt(xs: list[list[Op]]) -> list[list[str]]:
            return [[str(o) for o in x] for x in xs]

        return {"current": txt(self.current), "queue": txt(self.queue), "retired": txt(self.retired)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Subspaces:
        def ops(xs: list[list[str]]) -> list[list[Op]]:
            return [[parse_op(t) for t in x] for x in xs]

        return cls(ops(d["current"]), ops(d["queue"]), ops(d.get("retired", [])))
