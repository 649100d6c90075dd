"""The mistakes gallery's data and suspect labels: confusion cells sorted by loss,
per-class precision/recall/F1, and mislabelled files found in a real image folder."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.core.config import TrainConfig
from app.core.data import load_builtin, load_image_folder
from app.core.mistakes import (
    CSV_FIELDS,
    SampleScores,
    find_suspects,
    precision_recall_f1,
    score_samples,
    write_suspects_csv,
)
from app.core.models import MNIST_SPEC
from app.core.preprocess import prepare_file
from app.core.training import Trainer
from tests.helpers.data import drawn_digits
from tests.helpers.digits import MNIST_DIR, MNIST_MISSING
from tests.helpers.models import random_model


def test_a_confusion_cell_lists_its_images_worst_first():
    probs = np.array(
        [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1], [0.05, 0.9, 0.05], [0.1, 0.1, 0.8]],
        dtype=np.float32,
    )
    s = SampleScores(probs, np.array([0, 0, 0, 0, 2]))
    assert s.cell(0, 1).tolist() == [3, 1, 2]  # p(true 0): 0.05, 0.2, 0.3
    assert s.cell(0, 0).tolist() == [0] and s.cell(2, 2).tolist() == [4] and s.cell(1, 1).size == 0
    assert s.confusion().tolist() == [[1, 3, 0], [0, 0, 0], [0, 0, 1]]
    np.testing.assert_allclose(s.loss, -np.log([0.9, 0.2, 0.3, 0.05, 0.8]), rtol=1e-6)


def test_precision_recall_f1_per_class():
    conf = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 0]])  # class 2 never present nor predicted
    p, r, f = precision_recall_f1(conf)
    np.testing.assert_allclose(p, [8 / 9, 9 / 11, 0])
    np.testing.assert_allclose(r, [0.8, 0.9, 0])
    np.testing.assert_allclose(f, [2 * (8 / 9) * 0.8 / (8 / 9 + 0.8), 2 * (9 / 11) * 0.9 / (9 / 11 + 0.9), 0])


def test_scores_are_the_apps_probabilities_with_flip_tta():
    data = drawn_digits(per_class=1)
    model = random_model("resnet-mnist-small")
    s = score_samples(model, data.images, data.labels, tta_flip=True)
    x = data.images.float() / 255
    with torch.no_grad():
        expected = torch.softmax((model(x) + model(x.flip(-1))) / 2, 1).numpy()
    np.testing.assert_allclose(s.probabilities, expected, atol=1e-5)
    assert s.labels.tolist() == data.labels.tolist()


def test_image_folders_remember_which_file_each_image_came_from(tmp_path):
    for c, d in (("a", 3), ("b", 7)):
        (tmp_path / c).mkdir()
        for k in range(3):
            img = np.zeros((40, 40), np.uint8)
            img[5 + 3 * k : 30, 10 + d : 14 + d] = 255
            Image.fromarray(img).save(tmp_path / c / f"{k}.png")
    (tmp_path / "a" / "junk.png").write_bytes(b"not a png")  # skipped: must not shift paths
    data = load_image_folder(tmp_path, MNIST_SPEC)
    assert len(data.paths) == len(data) == 6 and len(data.skipped) == 1
    for i, path in enumerate(data.paths):
        assert np.array_equal(prepare_file(path, MNIST_SPEC).pixels, data.images[i, 0].numpy())
        assert Path(path).parent.name == data.classes[int(data.labels[i])]
    sub = data.subset(torch.tensor([4, 1]))
    assert sub.paths == [data.paths[4], data.paths[1]]


@pytest.mark.slow
@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=MNIST_MISSING)
def test_mislabelled_files_in_a_folder_dataset_top_the_suspect_list(tmp_path):
    """600 real MNIST training digits as PNG files in class folders, 5% of them (30) put
    in a wrong folder at random; a small model is trained on the folder as the app
    would, and the 30 most suspect files must contain at least 24 of the 30."""
    mnist = load_builtin("mnist", MNIST_DIR, "train")
    rng = np.random.default_rng(0)
    labels = mnist.labels.numpy()
    picked = np.concatenate([rng.choice(np.flatnonzero(labels == c), 60, replace=False) for c in range(10)])
    flipped = set(rng.choice(len(picked), 30, replace=False).tolist())
    wrong: set[str] = set()
    for j, i in enumerate(picked):
        label = int(labels[i])
        if j in flipped:
            label = (label + int(rng.integers(1, 10))) % 10
        folder = tmp_path / "digits" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{j:04d}.png"
        Image.fromarray(mnist.images[i, 0].numpy()).save(path)
        if j in flipped:
            wrong.add(str(path))
    data = load_image_folder(tmp_path / "digits", MNIST_SPEC)
    config = TrainConfig(arch="resnet-mnist-small", epochs=10, batch_size=32, lr=0.05, val_fraction=0.0, device="cpu")
    trainer = Trainer(config, data)
    for _ in trainer.run():
        pass
    assert trainer.model is not None
    suspects = find_suspects(trainer.model.eval(), data)
    top = suspects[: len(wrong)]
    found = sum(s.path in wrong for s in top)
    print(f"label noise: {found}/{len(wrong)} flipped files among the top {len(top)} suspects")
    assert found >= 0.8 * len(wrong)
    first = top[0]
    assert first.given != first.predicted and first.given_probability < 0.5
    assert Path(first.path).is_file() and Path(first.path).parent.name == first.given
    # The list as a user gets it: a CSV file with every image, worst first.
    out = tmp_path / "suspects.csv"
    write_suspects_csv(suspects, out)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert tuple(rows[0]) == CSV_FIELDS and len(rows) == len(data)
    assert [r["path"] for r in rows[:30]] == [s.path for s in top]
    assert float(rows[0]["loss"]) >= float(rows[1]["loss"]) >= float(rows[-1]["loss"])
