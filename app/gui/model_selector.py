"""Chooses the model: the shipped one plus every model the user trained."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QSizePolicy, QWidget

from app.core import resources


def _key(path: str | Path) -> str:
    p = Path(path)
    p = p if p.suffix == ".safetensors" else p.with_suffix(".safetensors")
    try:
        return str(p.resolve())
    except OSError:
        return str(p.absolute())


class ModelSelector(QComboBox):
    """Lists the shipped model, the models under `user_models_dir()` and any model file
    opened by hand; rescans the folder whenever the list is opened.

    Signals:
        model_chosen(str): the path (.safetensors) of the model the user picked.
    """

    model_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelSelector")
        self.setAccessibleName("Model")
        self.setToolTip("The model that classifies drawings and images")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.setMinimumContentsLength(22)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self._extra: list[str] = []  # opened by hand, outside the models folder
        self._quiet = False
        self.refresh()
        self.activated.connect(self._on_activated)

    # --- listing ----------------------------------------------------------------------------

    def _scan(self) -> list[tuple[str, str]]:
        shipped = resources.default_model_path()
        weights = resources.weights_dir()
        others = sorted(weights.glob("*.safetensors"), key=lambda p: p.name.lower()) if weights.is_dir() else []
        builtin = [shipped] + [p for p in others if _key(p) != _key(shipped)]  # e.g. `make model-oe`'s
        entries = [(f"{p.stem} (built-in)", str(p)) for p in builtin]
        seen = {_key(p) for p in builtin}
        folder = resources.user_models_dir()
        found = sorted(folder.glob("*.safetensors"), key=lambda p: p.name.lower()) if folder.is_dir() else []
        for p in found + [Path(e) for e in self._extra]:
            if _key(p) in seen:
                continue
            seen.add(_key(p))
            entries.append((p.stem, str(p)))
        return entries

    def refresh(self) -> None:
        """Rescans the models folder, keeping the current choice."""
        current = self.current_path()
        self._quiet = True
        try:
            self.clear()
            for name, path in self._scan():
                self.addItem(name, path)
                self.setItemData(self.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
            if current is not None:
                self._select(current)
        finally:
            self._quiet = False

    def showPopup(self) -> None:  # noqa: N802
        self.refresh()  # models trained by the CLI since the last look
        super().showPopup()

    # --- choosing ---------------------------------------------------------------------------

    def paths(self) -> list[str]:
        return [self.itemData(i) for i in range(self.count())]

    def current_path(self) -> str | None:
        data = self.currentData()
        return str(data) if data else None

    def _select(self, path: str) -> bool:
        key = _key(path)
        for i in range(self.count()):
            if _key(self.itemData(i)) == key:
                self.setCurrentIndex(i)
                return True
        return False

    def add_model(self, path: str) -> None:
        """Lists a model (e.g. one just trained), without choosing it."""
        if not any(_key(p) == _key(path) for p in self.paths()):
            folder = resources.user_models_dir()
            if Path(path).parent.resolve() != folder.resolve():
                self._extra.append(str(path))
        self.refresh()

    def select_path(self, path: str, emit: bool = True) -> None:
        """Chooses a model, listing it first if needed; emits model_chosen."""
        self.add_model(path)
        self._quiet = True
        try:
            self._select(path)
        finally:
            self._quiet = False
        if emit:
            self.model_chosen.emit(self.current_path() or path)

    def browse(self) -> None:
        """Lets the user pick a model file anywhere on disk."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open model", str(resources.user_models_dir()), "Models (*.safetensors)"
        )
        if path:
            self.select_path(path)

    def _on_activated(self, index: int) -> None:
        if not self._quiet and index >= 0:
            self.model_chosen.emit(str(self.itemData(index)))
