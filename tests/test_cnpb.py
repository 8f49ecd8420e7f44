"""CNPB-synth (the synthetic stand-in for the private CNPB set): determinism, API, cache, difficulty."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bnn_flow.data import cnpb, cnpb_render
from bnn_flow.errors import BadInputError


def test_same_seed_is_byte_identical_and_seeds_differ():
    a_img, a_lab = cnpb.generate(8, seed=5)
    b_img, b_lab = cnpb.generate(8, seed=5)
    assert a_img.tobytes() == b_img.tobytes() and a_lab.tobytes() == b_lab.tobytes()
    c_img, _ = cnpb.generate(8, seed=6)
    assert not np.array_equal(a_img, c_img)


def test_workers_and_prefixes_do_not_change_pixels():
    one, lab1 = cnpb.generate(10, seed=11)
    two, lab2 = cnpb.generate(10, seed=11, workers=2)
    assert one.tobytes() == two.tobytes() and np.array_equal(lab1, lab2)
    longer, lab3 = cnpb.generate(14, seed=11)  # image i depends on (seed, i) only
    assert np.array_equal(longer[:10], one) and np.array_equal(lab3[:10], lab1)


def test_shapes_dtypes_and_balance():
    images, labels = cnpb.generate(12, seed=3)
    assert images.shape == (12, 100, 100, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels, minlength=4).tolist() == [3, 3, 3, 3]
    assert not np.array_equal(labels, np.sort(labels))  # shuffled, not in class order
    small, _ = cnpb.generate(4, seed=3, image_size=32)
    assert small.shape == (4, 32, 32, 3)
    assert cnpb.CNPB_CLASSES == ("F06", "K11", "S19", "V22")


def test_labels_are_shuffled_blocks_of_four():
    labels = cnpb.labels_for(9, 0, 400)
    for block in labels.reshape(-1, 4):
        assert sorted(block.tolist()) == [0, 1, 2, 3]
    assert np.array_equal(cnpb.labels_for(9, 6, 23), labels[6:23])


def test_distractor_text_never_spells_a_class_code():
    rng = np.random.default_rng(0)
    texts = [cnpb_render._distractor_text(rng, cnpb.CNPB_CLASSES) for _ in range(3000)]
    assert not any(code in t.replace(" ", "") for t in texts for code in cnpb.CNPB_CLASSES)
    assert any(t[0] in "FKSV" and t[1:] in ("06", "11", "19", "22") for t in texts)  # look-alikes exist


def test_load_caches_into_root_and_rereads(tmp_path, monkeypatch):
    monkeypatch.setattr(cnpb, "SPLITS", {"train": (8, cnpb.TRAIN_SEED), "test": (4, cnpb.TEST_SEED)})
    images, labels = cnpb.load("train", root=tmp_path)
    files = list((tmp_path / "cnpb-synth").glob("*.npz"))
    assert len(files) == 1 and f"v{cnpb.GENERATOR_VERSION}" in files[0].name and "100px" in files[0].name
    assert np.array_equal(images, cnpb.generate(8, cnpb.TRAIN_SEED)[0])

    def no_generate(*args, **kwargs):
        raise AssertionError("load() regenerated instead of reading its cache")

    monkeypatch.setattr(cnpb, "generate", no_generate)
    again, again_labels = cnpb.load("train", root=tmp_path)
    assert again.tobytes() == images.tobytes() and np.array_equal(again_labels, labels)


def test_load_image_size_gets_its_own_cache_and_find(tmp_path, monkeypatch):
    monkeypatch.setattr(cnpb, "SPLITS", {"train": (8, cnpb.TRAIN_SEED), "test": (4, cnpb.TEST_SEED)})
    test_images, _ = cnpb.load("test", root=tmp_path, image_size=40)
    assert test_images.shape == (4, 40, 40, 3)
    assert len(list((tmp_path / "cnpb-synth").glob("*-test-40px.npz"))) == 1
    assert cnpb.find(tmp_path) is None  # the default-size splits are not cached yet
    cnpb.load("train", root=tmp_path)
    cnpb.load("test", root=tmp_path)
    assert cnpb.find(tmp_path) == tmp_path / "cnpb-synth"


def test_every_parameter_is_documented():
    doc_md = (Path(__file__).resolve().parents[1] / "docs" / "cnpb-synth.md").read_text()
    for field in dataclasses.fields(cnpb.CnpbSynthParams):
        assert f"{field.name}: " in cnpb.CnpbSynthParams.__doc__
        assert f"| `{field.name}` |" in doc_md


def test_bad_inputs_raise_bad_input_error(tmp_path):
    with pytest.raises(BadInputError, match="split"):
        cnpb.load("validation", root=tmp_path)
    with pytest.raises(BadInputError):
        cnpb.generate(-1, seed=0)
    with pytest.raises(BadInputError, match="fonts"):
        cnpb.generate(4, seed=0, params=cnpb.CnpbSynthParams(fonts=("NoSuchFont.ttf",)))


def test_sample_grid_is_a_small_png(tmp_path):
    path = cnpb.render_sample_grid(tmp_path / "grid.png", n_per_class=2)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 300_000


def _nearest_mean_accuracy(n_train: int, n_test: int) -> float:
    x_tr, y_tr = cnpb.generate(n_train, cnpb.TRAIN_SEED, workers=2)
    x_te, y_te = cnpb.generate(n_test, cnpb.TEST_SEED, workers=2)
    a = x_tr.reshape(n_train, -1).astype(np.float32) / 255
    b = x_te.reshape(n_test, -1).astype(np.float32) / 255
    means = np.stack([a[y_tr == c].mean(0) for c in range(4)])
    dist = (b * b).sum(1)[:, None] - 2 * b @ means.T + (means * means).sum(1)[None, :]
    return float((dist.argmin(1) == y_te).mean())


def test_not_trivially_separable_by_nearest_class_mean():
    # Fitting on 2,000 / testing on 1,000 gave 0.25 (chance is 0.25); a smaller sample keeps this fast.
    assert _nearest_mean_accuracy(600, 400) < 0.6


@pytest.mark.slow
def test_not_trivially_separable_full_size():
    assert _nearest_mean_accuracy(2000, 1000) < 0.6
