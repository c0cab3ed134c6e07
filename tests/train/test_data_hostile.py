"""Hostile data directories (issue 11): every malformed IDX set is one line and exit 2, before any output."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from tests.fixtures.cli import assert_refused, invoke

ARCH = "configs/archs/mobilenetv2-1.0-224.json"


def idx(arr: np.ndarray) -> bytes:
    """IDX bytes of a uint8 array: 00 00 08 ndim, big-endian dims, data."""
    return bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_set(root, *, n=20, labels=None, gz=False, images_bytes=None, labels_bytes=None):
    """A tiny Fashion-MNIST-shaped directory (train and t10k), with one part replaceable by raw bytes."""
    root.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    lbls = np.arange(n, dtype=np.uint8) % 10 if labels is None else np.asarray(labels, dtype=np.uint8)
    for prefix in ("train", "t10k"):
        parts = {"images-idx3-ubyte": images_bytes if images_bytes is not None else idx(imgs),
                 "labels-idx1-ubyte": labels_bytes if labels_bytes is not None else idx(lbls)}
        for name, body in parts.items():
            path = root / f"{prefix}-{name}{'.gz' if gz else ''}"
            path.write_bytes(gzip.compress(body) if gz and not body.startswith(b"GARBAGE") else body)
    return root


def bad_crc(body: bytes) -> bytes:
    data = bytearray(gzip.compress(body))
    data[-8] ^= 0xFF  # the CRC32 of the trailer
    return bytes(data)


def refused(tmp_path, data_dir, text):
    out = tmp_path / "out"
    res = invoke("train", ARCH, "--data", data_dir, "--preset", "smoke", "--out", out)
    assert_refused(res, text)
    written = [p.name for p in out.rglob("*") if not p.name.startswith(".")] if out.exists() else []
    assert written == [], written  # nothing half-written


good = idx(np.zeros((20, 28, 28), dtype=np.uint8))


@pytest.mark.parametrize("body, text", [
    (b"", "no IDX header"),
    (good[:10], "truncated inside its header"),
    (good[:-100], "declares dims 20x28x28 (15680 bytes) but holds 15580 bytes"),
    (good + b"\0" * 7, "but holds more bytes"),
    (idx(np.zeros((10, 28, 28), dtype=np.uint8))[:16] + b"\0" * 50, "declares dims 10x28x28"),
    (bytes([0, 0, 0x0D, 3]) + good[4:], "type 0x0d"),
    (bytes([0, 0, 8, 200]) + good[4:], "with 200 dims"),
])
def test_malformed_idx_images(tmp_path, body, text):
    refused(tmp_path, write_set(tmp_path / "d", images_bytes=body), text)


def test_corrupt_gzip_garbage(tmp_path):
    refused(tmp_path, write_set(tmp_path / "d", gz=True, images_bytes=b"GARBAGE not gzip"), "is corrupt")


def test_corrupt_gzip_bad_crc(tmp_path):
    d = write_set(tmp_path / "d", gz=True)
    (d / "train-images-idx3-ubyte.gz").write_bytes(bad_crc(good))
    refused(tmp_path, d, "train-images-idx3-ubyte.gz is corrupt")


def test_label_out_of_range(tmp_path):
    labels = [0] * 19 + [12]
    refused(tmp_path, write_set(tmp_path / "d", labels=labels), "label 12 at index 19 is out of range for 10 classes")


def test_count_mismatch(tmp_path):
    refused(tmp_path, write_set(tmp_path / "d", labels_bytes=idx(np.zeros(19, dtype=np.uint8))),
            "has 20 images but")


def test_labels_file_with_image_dims(tmp_path):
    refused(tmp_path, write_set(tmp_path / "d", labels_bytes=good), "expected one label per image")


def test_search_refuses_bad_labels_before_creating_the_run(tmp_path):
    d = write_set(tmp_path / "d", labels=[0] * 19 + [250])
    out = tmp_path / "run"
    res = invoke("search", "--latency", "80ms", "--preset", "smoke", "--data", d, "--out", out)
    assert_refused(res, "label 250 at index 19")
    assert not (out / "run.json").exists()
