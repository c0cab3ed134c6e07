"""The cluttered-canvas tasks: pure, seeded canvases; splits; task files; bad input in one line."""

from pathlib import Path

import numpy as np
import pytest
import torch

from nse_hw.errors import NseError
from nse_hw.train.cluttered import CanvasSet, ClutterTask, compose, load_task, pixel_stats
from nse_hw.train.data import load_data, make_loader
from tests.fixtures.cli import assert_refused, invoke

MBV2 = str(Path(__file__).resolve().parents[2] / "configs" / "archs" / "mobilenetv2-1.0-224.json")

TASK = ClutterTask("t", 48)


def _items(n=5):
    """n 28x28 items, item i a solid square of value 10*(i+1) (so the sum of a canvas tells which items it holds)."""
    imgs = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        imgs[i, 4:24, 4:24] = 10 * (i + 1)
    return imgs


def test_a_canvas_is_a_pure_function_of_seed_split_key_index():
    imgs = _items()
    a = compose(TASK, imgs, "train", 3, 7, 1)
    assert a.shape == (48, 48) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, compose(TASK, imgs, "train", 3, 7, 1))
    for other in (compose(TASK, imgs, "train", 4, 7, 1), compose(TASK, imgs, "heldout", 3, 7, 1),
                  compose(TASK, imgs, "train", 3, 8, 1), compose(ClutterTask("t", 48, seed=1), imgs, "train", 3, 7, 1)):
        assert not np.array_equal(a, other)


# Fingerprints of four canvases as the task was defined when the ct48 pilot and benchmark ran (float64 sum,
# nonzero count, sum of squares): a change to compose() that changes the task, even one draw's order, fails here.
GOLDEN = [(("train", 0, 0), 415.50776439066976, 799, 276.465469162899),
          (("train", 5, 123456), 559.5496154585853, 1102, 350.137456390753),
          (("heldout", 0, 17), 587.9471758613363, 1061, 399.71874463387),
          (("test", 0, 29999), 439.47976750833914, 785, 306.95696552749314)]


@pytest.mark.parametrize(("where", "total", "nonzero", "squares"), GOLDEN)
def test_canvases_are_the_task_the_benchmarks_ran_on(where, total, nonzero, squares):
    imgs = ((np.arange(7 * 28 * 28).reshape(7, 28, 28) * 37) % 251).astype(np.uint8)
    split, key, index = where
    c = compose(ClutterTask("t", 48), imgs, split, key, index, index % 7).astype(np.float64)
    assert (c.sum(), np.count_nonzero(c), (c ** 2).sum()) == (pytest.approx(total, rel=1e-9), nonzero,
                                                              pytest.approx(squares, rel=1e-9))


def test_no_clutter_leaves_only_the_item_and_its_scale():
    imgs = np.zeros((2, 28, 28), np.uint8)
    imgs[0] = 255  # item 0 is a white square: the canvas holds one white square of side round(28 * s)
    task = ClutterTask("t", 48, scale=(1.0, 1.0), clutter=(0, 0))
    c = compose(task, imgs, "test", 0, 0, 0)
    assert c.sum() == pytest.approx(28 * 28)
    task = ClutterTask("t", 48, scale=(0.5, 0.5), clutter=(0, 0))
    assert compose(task, imgs, "test", 0, 0, 0).sum() == pytest.approx(14 * 14)


def test_clutter_comes_from_other_items_only():
    imgs = np.zeros((3, 28, 28), np.uint8)
    imgs[1] = 255  # only item 1 has ink: a canvas of item 1 with clutter from items 0 and 2 holds the item alone
    task = ClutterTask("t", 48, scale=(1.0, 1.0), clutter=(8, 8))
    assert compose(task, imgs, "train", 0, 5, 1).sum() == pytest.approx(28 * 28)
    assert compose(task, imgs, "train", 0, 5, 0).sum() > 0  # item 0's canvas gets item 1's fragments


def test_a_stream_draws_new_canvases_per_key_and_fixed_sets_do_not():
    imgs, labels = _items(), np.arange(5) % 3
    stream = CanvasSet(TASK, imgs, labels, "train", length=5, stream=True)
    fixed = CanvasSet(TASK, imgs, labels, "test", length=10, stream=False)
    x0, y0 = stream.with_key(0)[2]
    x1, y1 = stream.with_key(1)[2]
    assert int(y0) == int(y1) == 2 and not torch.equal(x0, x1)
    assert torch.equal(fixed.with_key(5)[7][0], fixed[7][0])
    assert int(fixed[7][1]) == labels[7 % 5]
    batches = [torch.cat([b[0] for b in make_loader(stream, 2, shuffle=True, seed=9, drop_last=False)])
               for _ in range(2)]
    assert torch.equal(*batches)  # the same seed: the same canvases in the same order, whatever ran before


def test_pixel_stats_normalise_the_task():
    mean, std = pixel_stats(TASK, _items(), samples=64)
    assert 0 < mean < 1 and 0 < std < 1


@pytest.mark.parametrize(("kw", "msg"), [
    ({"canvas": 30}, "does not fit the 30 px canvas"),
    ({"crop": 40}, "clutter crops of 40 px"),
    ({"clutter": (5, 2)}, "0 <= low <= high"),
    ({"clutter": (4, 40)}, "cannot fit"),
])
def test_impossible_tasks_say_why(kw, msg):
    assert any(msg in p for p in ClutterTask("t", **{"canvas": 48, **kw}).problems())
    assert not ClutterTask("t", 48).problems()


def test_shipped_tasks_load(tmp_path):
    t48 = load_task("ct-fmnist-48")
    assert (t48.canvas, t48.clutter, t48.crop, t48.test_placements) == (48, (4, 8), 8, 3)
    assert load_task("ct-fmnist-64").canvas == 64
    assert load_task("no-such-task") is None
    f = tmp_path / "mine.yaml"
    f.write_text("kind: cluttered-fashion-mnist\ncanvas: 40\nclutter: [9, 40]\n")
    with pytest.raises(NseError, match="cannot fit"):
        load_task(str(f))
    f.write_text("kind: cluttered-fashion-mnist\ncanvas: 40\ncluter: [1, 2]\n")
    with pytest.raises(NseError, match="unknown task key"):
        load_task(str(f))


def test_load_data_builds_the_three_splits():
    b = load_data("ct-fmnist-48", resolution=None, limit_train=300, limit_heldout=100, limit_test=250)
    assert (b.name, b.resolution, b.channels, b.classes) == ("ct-fmnist-48", 48, 1, 10)
    assert (len(b.train), len(b.heldout), len(b.test)) == (300, 100, 250)
    x, y = b.test[0]
    assert x.shape == (1, 48, 48) and 0 <= int(y) < 10
    assert len(load_data("ct-fmnist-48", resolution=48, limit_train=10, limit_heldout=10).test) == 30000
    with pytest.raises(NseError, match="draws 48x48 px canvases, but the config asks for resolution 32"):
        load_data("ct-fmnist-48", resolution=32)
    with pytest.raises(NseError, match="unknown data source 'ct-fmnist-12'"):
        load_data("ct-fmnist-12", resolution=32)


def test_cli_refuses_bad_tasks_in_one_line(tmp_path):
    arch = MBV2
    assert_refused(invoke("train", arch, "--data", "ct-fmnist-99", "--preset", "smoke", "--out", str(tmp_path / "a")),
                   "unknown data source 'ct-fmnist-99'")
    small = tmp_path / "small.yaml"
    small.write_text("kind: cluttered-fashion-mnist\ncanvas: 16\nscale: [0.5, 0.5]\ncrop: 4\n")
    assert_refused(invoke("train", arch, "--data", str(small), "--preset", "smoke", "--out", str(tmp_path / "b")),
                   "smaller than")
    for run in (tmp_path / "a", tmp_path / "b"):  # nothing written
        assert not run.exists() or not any(run.iterdir())


@pytest.mark.slow
def test_train_smoke_on_the_cluttered_task_learns(tmp_path):
    res = invoke("train", MBV2, "--data", "ct-fmnist-48", "--preset", "smoke",
                 "--epochs", "2", "--threads", "1", "--out", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    out = __import__("json").loads((tmp_path / "r" / "result.json").read_text())
    assert out["data"] == "ct-fmnist-48" and out["proxy_input"] == [48, 48, 1] and out["weights"].startswith("last.pt")
    assert out["test_images"] == 1000 and out["test_top1"] > 0.2  # chance is 0.1


def test_train_of_a_search_run_dir_uses_the_data_it_searched_on(tmp_path):
    run = tmp_path / "search"
    run.mkdir()
    (run / "arch.json").write_text(Path(MBV2).read_text())
    (run / "run.json").write_text('{"config": {"data": {"source": "ct-fmnist-99"}}}')
    assert_refused(invoke("train", str(run), "--preset", "smoke", "--out", str(tmp_path / "r")),
                   "unknown data source 'ct-fmnist-99'")
