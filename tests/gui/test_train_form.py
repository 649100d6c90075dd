"""The Train form on its own: the values a run gets, the reasons it refuses bad ones, the
lock while a run uses them, and the data each choice loads."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QLabel

from app.core.config import TrainingError
from app.core.recipes import recipe_of
from app.gui.train_form import TrainForm


@pytest.fixture
def form(qtbot):
    f = TrainForm()
    qtbot.addWidget(f)
    f.show()
    return f


def test_the_form_gives_the_config_a_run_uses(form):
    form.epochs_spin.setValue(3)
    form.batch_spin.setValue(32)
    form.lr_edit.setText("0.05")
    form.val_spin.setValue(20.0)
    form.seed_spin.setValue(7)
    form.limit_spin.setValue(500)
    cfg = form.config("cpu")
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.val_fraction, cfg.seed, cfg.limit) == (3, 32, 0.05, 0.2, 7, 500)
    assert cfg.device == "cpu" and cfg.arch == form.arch_combo.currentData()
    assert recipe_of(cfg) == form.recipe() == "digits"  # MNIST's recipe by default
    form.augment_check.setChecked(False)
    assert not form.config().augment


def test_a_bad_value_shows_its_reason_and_a_good_one_clears_it(qtbot, form):
    seen: list[str] = []
    form.validity_changed.connect(seen.append)
    error = form.findChild(QLabel, "formError")
    form.lr_edit.setText("fast")
    assert "learning rate must be a number" in form.error() and error.isVisible()
    with pytest.raises(TrainingError, match="learning rate"):
        form.config()
    form.lr_edit.setText("0.1")
    assert form.error() == "" and not error.isVisible()
    assert seen and seen[-1] == ""


def test_the_data_request_follows_the_dataset_and_folder(form, tmp_path):
    form.dataset_combo.setCurrentIndex(form.dataset_combo.findData("mnist"))
    req = form.data_request()
    assert req.dataset == "mnist" and req.data_dir is None and form.data_slug() == "mnist"
    form.dataset_combo.setCurrentIndex(form.dataset_combo.findData("folder"))
    assert "choose an image folder" in form.error()
    pets = tmp_path / "My Pets!"
    pets.mkdir()
    form.folder_edit.setText(str(pets))
    form.image_size_spin.setValue(32)
    req = form.data_request()
    assert req.dataset == str(pets) and req.image_size == 32
    assert form.data_slug() == "my-pets-"  # safe in a file name
    form.folder_edit.setText(str(tmp_path / "missing"))
    assert "folder not found" in form.error()


def test_locking_disables_every_field_and_unlocking_restores_them(form):
    fields = [form.dataset_combo, form.arch_combo, form.epochs_spin, form.batch_spin, form.lr_edit,
              form.augment_check, form.outlier_spin, form.val_spin, form.seed_spin, form.limit_spin]  # fmt: skip
    form.set_locked(True)
    assert not any(w.isEnabled() for w in fields)
    form.set_locked(False)
    assert all(w.isEnabled() for w in fields)


def test_settings_round_trip_and_bad_stored_values_fall_back(qtbot, tmp_path):
    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    a = TrainForm()
    qtbot.addWidget(a)
    a.epochs_spin.setValue(9)
    a.lr_edit.setText("0.02")
    a.save_settings(store)
    b = TrainForm()
    qtbot.addWidget(b)
    b.load_settings(store)
    assert b.epochs_spin.value() == 9 and b.lr_edit.text() == "0.02"
    store.setValue(f"{b_group(store)}/epochs", "lots")  # a hand-edited or damaged file
    c = TrainForm()
    qtbot.addWidget(c)
    c.load_settings(store)
    assert c.error() == ""  # still a form that can start a run


def b_group(store: QSettings) -> str:
    groups = store.childGroups()
    assert len(groups) == 1
    return groups[0]


def test_outlier_exposure_reaches_the_run_is_checked_and_follows_the_recipe(qtbot, form, monkeypatch, tmp_path):
    from app.core import recipes

    assert form.outlier_spin.value() == 0 and form.outlier_spin.text() == "off"  # the digits recipe: off
    assert form.config().outlier_exposure == 0
    form.outlier_spin.setValue(0.5)
    assert form.config().outlier_exposure == 0.5
    form.outlier_spin.setValue(12)  # the spin box allows it; TrainConfig says why not
    assert form.error().startswith("outlier exposure must be 0..10")
    assert form.outlier_spin.styleSheet() != ""
    form.outlier_spin.setValue(0.5)
    assert form.error() == ""
    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    form.save_settings(store)
    restored = TrainForm()
    qtbot.addWidget(restored)
    restored.load_settings(store)
    assert restored.config().outlier_exposure == 0.5
    # A recipe that uses it proposes its weight where the field still holds the old proposal.
    monkeypatch.setitem(recipes.RECIPES, "digits-40", {**recipes.RECIPES["digits-40"], "outlier_exposure": 0.7})
    form.outlier_spin.setValue(0.0)
    form.recipe_combo.setCurrentIndex(form.recipe_combo.findData("digits-40"))
    assert form.config().outlier_exposure == 0.7
    form.recipe_combo.setCurrentIndex(form.recipe_combo.findData("digits"))
    assert form.config().outlier_exposure == 0.0
    form.outlier_spin.setValue(0.3)  # the user's own value stays
    form.recipe_combo.setCurrentIndex(form.recipe_combo.findData("digits-40"))
    assert form.config().outlier_exposure == 0.3


def test_every_recipe_is_listed_and_the_wide_one_proposes_its_network(form):
    from app.core.recipes import RECIPES

    keys = [form.recipe_combo.itemData(i) for i in range(form.recipe_combo.count())]
    assert keys == list(RECIPES)
    form.dataset_combo.setCurrentIndex(form.dataset_combo.findData("fashion-mnist"))
    form.recipe_combo.setCurrentIndex(form.recipe_combo.findData("objects-wide"))
    cfg = form.config()
    assert (cfg.arch, cfg.epochs, cfg.batch_size, cfg.lr) == ("resnet-mnist", 14, 128, 0.2) and cfg.hflip
    assert recipe_of(cfg) == "objects-wide"
