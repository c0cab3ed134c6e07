"""A latency term for your own supernet: nse_hw.expected_latency as a differentiable loss on the architecture
parameters, priced by a device's latency table.

Each of the space's searchable layers has a few candidate ops, each kept with probability sigmoid(alpha). Here
the loss is the latency penalty alone, so the probabilities move until the expected latency meets the target;
in a real search, add the penalty to the task loss of the supernet's forward pass.

    .venv/bin/python examples/own_supernet_penalty.py --target 70 --steps 100
"""

import argparse

import torch

import nse_hw
from nse_hw.space import load_space

CANDIDATES = ("mb_k3_e3", "mb_k5_e6", "mb_k7_e6")  # grammar tokens of the space's pool


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="pixel1")
    ap.add_argument("--target", type=float, default=70.0, help="latency target, ms")
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()

    space = load_space("nse27-proxyless224")
    table = nse_hw.load_table(args.device)  # load once; each call reuses its cost model
    ops = [CANDIDATES] * len(space.searchable)
    alpha = torch.zeros(len(ops), len(CANDIDATES), requires_grad=True)  # your supernet's architecture logits
    opt = torch.optim.Adam([alpha], lr=0.1)

    def expected() -> torch.Tensor:
        p = 0.01 + 0.98 * torch.sigmoid(alpha)  # kept away from 0 and 1, as NSE does
        return nse_hw.expected_latency(p, space=space, table=table, ops=ops)

    with torch.no_grad():
        start = float(expected())
    for _ in range(args.steps):
        penalty = (expected() / args.target - 1.0) ** 2  # + your task loss
        opt.zero_grad()
        penalty.backward()
        opt.step()
    with torch.no_grad():
        end = float(expected())
    print(f"expected latency: {start:.2f} ms -> {end:.2f} ms (target {args.target:g} ms, {args.steps} steps)")
    print("mean keep-probability per candidate:",
          ", ".join(f"{op} {float(torch.sigmoid(alpha.detach()[:, i]).mean()):.2f}" for i, op in enumerate(CANDIDATES)))


if __name__ == "__main__":
    main()
