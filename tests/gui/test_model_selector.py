"""The model selector: the shipped model first, then the user's models (rescanned when
the list opens), models opened from elsewhere, and the path of what the user picks."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core import resources
from app.gui.model_selector import ModelSelector


@pytest.fixture
def models_dir(studio_home) -> Path:
    folder = resources.user_models_dir()
    folder.mkdir(parents=True)
    for name in ("zebra", "Apple"):
        (folder / f"{name}.safetensors").write_bytes(b"")
    return folder


@pytest.fixture
def studio_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RESNET_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def names(sel: ModelSelector) -> list[str]:
    return [sel.itemText(i) for i in range(sel.count())]


def test_shipped_model_first_then_the_users_models_by_name(qtbot, models_dir):
    sel = ModelSelector()
    qtbot.addWidget(sel)
    assert sel.objectName() == "modelSelector"
    shipped = resources.default_model_path()
    assert names(sel) == [f"{shipped.stem} (built-in)", "Apple", "zebra"]
    assert sel.current_path() == str(shipped)
    assert sel.paths()[1] == str(models_dir / "Apple.safetensors")


def test_other_models_beside_the_shipped_one_are_listed_as_built_in(qtbot, models_dir, tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ("mnist-resnet", "mnist-resnet-oe"):  # `make model-oe` writes the second
        (weights / f"{name}.safetensors").write_bytes(b"")
    monkeypatch.setattr(resources, "weights_dir", lambda: weights)
    sel = ModelSelector()
    qtbot.addWidget(sel)
    assert names(sel) == ["mnist-resnet (built-in)", "mnist-resnet-oe (built-in)", "Apple", "zebra"]
    assert sel.current_path() == str(weights / "mnist-resnet.safetensors")


def test_a_model_trained_meanwhile_appears_when_the_list_is_opened(qtbot, models_dir):
    sel = ModelSelector()
    qtbot.addWidget(sel)
    sel.setCurrentIndex(2)
    (models_dir / "mango.safetensors").write_bytes(b"")  # e.g. by the CLI
    sel.showPopup()
    sel.hidePopup()
    assert "mango" in names(sel)
    assert sel.current_path() == str(models_dir / "zebra.safetensors")  # the choice is kept


def test_choosing_emits_the_path_and_outside_models_are_listed_once(qtbot, models_dir, tmp_path):
    sel = ModelSelector()
    qtbot.addWidget(sel)
    elsewhere = tmp_path / "elsewhere" / "mine.safetensors"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"")
    with qtbot.waitSignal(sel.model_chosen) as blocker:
        sel.select_path(str(elsewhere))
    assert blocker.args == [str(elsewhere)]
    assert sel.current_path() == str(elsewhere)
    sel.add_model(str(elsewhere.with_suffix(".json")))  # the card's name: the same model
    assert names(sel).count("mine") == 1
    with qtbot.waitSignal(sel.model_chosen) as blocker:
        sel.activated.emit(1)  # the user picks "Apple" from the list
    assert blocker.args == [str(models_dir / "Apple.safetensors")]


def test_selecting_without_emitting_is_quiet(qtbot, models_dir):
    sel = ModelSelector()
    qtbot.addWidget(sel)
    with qtbot.assertNotEmitted(sel.model_chosen):
        sel.select_path(str(models_dir / "zebra.safetensors"), emit=False)
    assert sel.currentText() == "zebra"
