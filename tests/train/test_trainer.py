import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest.mock import Mock

import pytest
import torch

from nse_hw.blocks import build_network
from nse_hw.errors import NseError
from nse_hw.space import Arch, adapt_arch, load_arch
from nse_hw.train.data import load_data
from nse_hw.train.recipe import load_train_config
from nse_hw.train.report import read_metrics
from nse_hw.train.rundir import check_run_dir
from nse_hw.train.trainer import (
    CKPT_FORMAT,
    augment,
    eval_state_dict,
    evaluate,
    load_weights,
    read_train_checkpoint,
    train,
)

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_train_writes_a_complete_run(tiny_files, tiny_arch, tmp_path):
    cfg, _ = load_train_config(tiny_files[1])
    res = train(tiny_arch, data="fashion-mnist", cfg=cfg, out=tmp_path / "run", preset="", config_path="x")
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["arch.json", "proxy_arch.json", "config.yaml", "metrics.jsonl", "curve.png", "last.pt", "best.pt",
         "result.json"])  # no temp files left behind
    assert load_arch(run / "arch.json") == tiny_arch
    proxy = adapt_arch(tiny_arch, resolution=32, channels=1, classes=10, width_mult=0.5)
    assert load_arch(run / "proxy_arch.json") == proxy
    assert (run / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2] and all(0 <= r["val_top1"] <= 1 for r in rows)
    state = read_train_checkpoint(run / "last.pt")
    assert state["format"] == CKPT_FORMAT and state["epoch"] == 2 and state["data"]["mean"] == [0.286]
    assert Arch.from_dict(state["proxy_arch"]) == proxy and {"optimizer", "scheduler", "rng"} <= set(state)
    assert state["scheduler"]["last_epoch"] == 2 * (256 // 32)  # stepped per iteration, full batches only
    # result.json's top-1 is the best checkpoint's on the test split: recompute it independently
    result = json.loads((run / "result.json").read_text())
    best = read_train_checkpoint(run / "best.pt")
    model = build_network(proxy)
    load_weights(model, eval_state_dict(best)[0], source="best", arch=proxy)
    bundle = load_data("fashion-mnist", resolution=32, limit_train=256, limit_heldout=96, limit_test=128)
    top1, _ = evaluate(model, bundle.test, batch_size=64, device=torch.device("cpu"))
    assert result["test_top1"] == pytest.approx(top1) == pytest.approx(res.test_top1)
    assert result["test_images"] == 128 and result["width_mult"] == 0.5 and result["best_epoch"] == best["epoch"]


def test_refuses_to_mix_runs(tmp_path):
    (tmp_path / "other.txt").write_text("keep me")
    with pytest.raises(NseError, match="not empty; choose another --out"):
        check_run_dir(tmp_path, resume=False)
    with pytest.raises(NseError, match="cannot resume"):
        check_run_dir(tmp_path, resume=True)
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.raises(NseError, match="resume it with --resume"):
        check_run_dir(tmp_path, resume=False)
    check_run_dir(tmp_path / "new", resume=False)  # absent is fine


def test_truncated_or_foreign_checkpoint_is_one_clear_error(tmp_path):
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04truncated")
    with pytest.raises(NseError, match="unreadable or truncated"):
        read_train_checkpoint(tmp_path / "cut.pt")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(NseError, match="not an nse-hw training checkpoint"):
        read_train_checkpoint(tmp_path / "foreign.pt")


def test_weights_of_another_arch_are_refused(tiny_arch, tiny_space):
    other = tiny_space.arch([(tiny_space.pool[0],)] * 4)
    with pytest.raises(NseError, match="does not fit architecture"):
        load_weights(build_network(tiny_arch), build_network(other).state_dict(), source="ck", arch=tiny_arch)


def test_augment_is_seeded_and_keeps_shape():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    a = augment(x, pad=2, hflip=True, gen=torch.Generator().manual_seed(3))
    b = augment(x, pad=2, hflip=True, gen=torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert torch.equal(augment(x, pad=0, hflip=False, gen=torch.Generator()), x)


def test_augment_crops_each_image_at_its_own_offset():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    gen = torch.Generator().manual_seed(7)
    got = augment(x, pad=1, hflip=False, gen=gen)
    off = torch.randint(0, 3, (2, 2), generator=torch.Generator().manual_seed(7)).tolist()  # the same draw
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    for i, (dy, dx) in enumerate(off):
        assert torch.equal(got[i], padded[i, :, dy:dy + 4, dx:dx + 4])
    assert got.stride() == x.stride()  # plain NCHW, as the network's convs expect


def _cli(*args: str) -> list[str]:
    return [str(BIN / "nse-hw"), *args]


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_uninterrupted_result(tiny_files, tiny_arch, tmp_path):
    arch_file, config = tiny_files
    cfg, _ = load_train_config(config, epochs=3)
    ref = train(tiny_arch, data="fashion-mnist", cfg=cfg, out=tmp_path / "ref")
    run = tmp_path / "killed"
    proc = subprocess.Popen(_cli("train", str(arch_file), "--config", str(config), "--epochs", "3", "--out",
                                 str(run)), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)  # mid-epoch 2: epoch 1 is on disk
    proc.wait()
    done = read_train_checkpoint(run / "last.pt")["epoch"]
    assert 1 <= done < 3
    res = subprocess.run(_cli("train", "--resume", str(run)), env=ENV, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "test top-1" in res.stdout
    assert [r["epoch"] for r in read_metrics(run / "metrics.jsonl")] == [1, 2, 3]
    a, b = read_train_checkpoint(run / "last.pt"), read_train_checkpoint(tmp_path / "ref" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])  # exact: same shuffles, same crops
    assert json.loads((run / "result.json").read_text())["test_top1"] == pytest.approx(ref.test_top1)
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_torchrun_ddp_two_gloo_processes(tiny_files, tmp_path):
    if shutil.which("torchrun", path=str(BIN)) is None:
        pytest.fail("torchrun is not installed beside python")
    arch_file, config = tiny_files
    run = tmp_path / "ddp"
    res = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", str(BIN / "nse-hw"),
                          "train", str(arch_file), "--config", str(config), "--out", str(run)],
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("test top-1") == 1  # only rank 0 reports
    result = json.loads((run / "result.json").read_text())
    assert result["world_size"] == 2 and result["test_images"] == 128
    state = read_train_checkpoint(run / "last.pt")
    # global batch 32 = 2 x 16: each rank takes half of the 256 images, so 8 steps per epoch as in one process
    assert state["world_size"] == 2 and state["scheduler"]["last_epoch"] == 2 * 8
    assert [r["epoch"] for r in read_metrics(run / "metrics.jsonl")] == [1, 2]


def test_recalibrate_bn_measures_the_weights_it_is_given(tiny_arch):
    from torch.utils.data import TensorDataset

    from nse_hw.train.trainer import recalibrate_bn

    net = build_network(tiny_arch, seed=0)
    x = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 + 1
    recalibrate_bn(net, TensorDataset(x, torch.zeros(64)), batches=2, batch_size=32, device=torch.device("cpu"))
    conv, bn = net.stem[0], net.stem[1]
    with torch.no_grad():
        expected = conv(x).mean((0, 2, 3))  # two equal batches: the cumulative average is the plain mean
    assert torch.allclose(bn.running_mean, expected, atol=1e-5)


def test_channels_last_trains_the_same_network_in_nhwc_and_resumes_exactly(tiny_files, tiny_arch, tmp_path,
                                                                          monkeypatch):
    # lr 1e-4: 8 SGD steps too small to amplify rounding (at 0.05 this tiny net's 1x1-map BN makes even a second
    # thread move the stem weights by 2%), so the two runs' updates compare
    runs = {}
    for cl in (False, True):
        cfg, _ = load_train_config(tiny_files[1], epochs=1, lr=1e-4, channels_last=cl)
        train(tiny_arch, data="fashion-mnist", cfg=cfg, out=tmp_path / str(cl))
        runs[cl] = read_train_checkpoint(tmp_path / str(cl) / "last.pt")
    proxy = Arch.from_dict(runs[True]["proxy_arch"])
    init = build_network(proxy, seed=0).state_dict()  # the trainer's seed-0 initial weights
    convs = [k for k, v in init.items() if v.ndim == 4]
    assert all(runs[True]["model"][k].is_contiguous(memory_format=torch.channels_last) for k in convs)
    for k in convs:  # the same maths: each conv's update agrees to NHWC's float32 rounding (2% measured)
        a, b = (runs[cl]["model"][k].double() - init[k].double() for cl in (False, True))
        assert (a - b).norm() < 0.1 * a.norm(), k
    assert "channels_last: true" in (tmp_path / "True" / "config.yaml").read_text()
    # stopped after epoch 1's checkpoint and resumed: the weights of a run that went straight through
    cfg, _ = load_train_config(tiny_files[1], epochs=2, lr=1e-4, channels_last=True)
    ref = train(tiny_arch, data="fashion-mnist", cfg=cfg, out=tmp_path / "ref")
    with monkeypatch.context() as m:
        m.setattr("nse_hw.train.trainer.write_metrics", Mock(side_effect=KeyboardInterrupt))  # right after last.pt
        with pytest.raises(KeyboardInterrupt):
            train(tiny_arch, data="fashion-mnist", cfg=cfg, out=tmp_path / "cut")
    assert read_train_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 1
    res = train(tiny_arch, data="fashion-mnist", cfg=cfg, out=tmp_path / "cut", resume=True)
    x, y = (read_train_checkpoint(tmp_path / d / "last.pt")["model"] for d in ("cut", "ref"))
    assert all(torch.equal(x[k], y[k]) for k in y) and res.test_top1 == pytest.approx(ref.test_top1)
