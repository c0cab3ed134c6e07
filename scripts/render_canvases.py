"""Draw test canvases of the cluttered proxy tasks for the docs: `.venv/bin/python scripts/render_canvases.py`
writes docs/assets/ct-fmnist.png (the same items on both canvas sizes, stream key 0 as the test set uses)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nse_hw.train.cluttered import compose, load_task  # noqa: E402
from nse_hw.train.data import _fashion_arrays, _fashion_root  # noqa: E402

CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")


def main() -> None:
    images, labels, _ = _fashion_arrays(_fashion_root("fashion-mnist"), "test")
    fig, axes = plt.subplots(2, 6, figsize=(9, 3.4))
    for row, name in enumerate(("ct-fmnist-48", "ct-fmnist-64")):
        task = load_task(name)
        assert task is not None
        for col in range(6):
            item = col * 997 % len(images)
            ax = axes[row, col]
            ax.imshow(compose(task, images, "test", 0, item, item), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(CLASSES[int(labels[item])], fontsize=8)
        axes[row, 0].set_ylabel(f"{name}\n{task.canvas} px", fontsize=8)
    fig.tight_layout()
    fig.savefig("docs/assets/ct-fmnist.png", dpi=100)


if __name__ == "__main__":
    main()
