"""The device switch: CPU, each GPU; unavailable ones listed, disabled, with the reason."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QWidget

from app.core.devices import DeviceInfo, list_devices


class DeviceSelector(QComboBox):
    """A combo of compute devices (`app.core.devices.list_devices()`).

    Signals:
        device_changed(str): the user picked another device id ("cpu", "cuda:0", "mps").
    """

    device_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None, devices: list[DeviceInfo] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("deviceSelector")
        self.setToolTip("Where training runs; switching during a run moves it at the next step")
        self.set_devices(devices if devices is not None else list_devices())
        self.currentIndexChanged.connect(self._on_index)

    def set_devices(self, devices: list[DeviceInfo]) -> None:
        """Fills the list; the first available GPU is preselected, else the CPU."""
        self.blockSignals(True)
        self.clear()
        model = self.model()
        assert isinstance(model, QStandardItemModel)
        for d in devices:
            label = d.name if d.available else f"{d.name} — unavailable"
            self.addItem(label, d.id)
            item = model.item(self.count() - 1)
            if d.available:
                item.setToolTip(d.id)
            else:
                item.setEnabled(False)
                item.setToolTip(f"{d.name}: {d.reason}")
                item.setData(d.reason, Qt.ItemDataRole.StatusTipRole)
        preferred = next((d.id for d in devices if d.available and d.id != "cpu"), "cpu")
        self.setCurrentIndex(max(self.findData(preferred), 0))
        self.blockSignals(False)

    def device(self) -> str:
        """The selected device id."""
        return str(self.currentData() or "cpu")

    def set_device(self, device: str) -> bool:
        """Selects `device` if it is listed and available (no signal); returns success."""
        i = self.findData(device)
        if i < 0 or not self.is_available(device):
            return False
        self.blockSignals(True)
        self.setCurrentIndex(i)
        self.blockSignals(False)
        return True

    def mark_unavailable(self, device: str, reason: str) -> None:
        """Disables a listed device that turned out unusable (a GPU that went away),
        with the reason as its tooltip."""
        i = self.findData(device)
        if i < 0:
            return
        model = self.model()
        assert isinstance(model, QStandardItemModel)
        item = model.item(i)
        item.setEnabled(False)
        name = item.text().split(" — ")[0]
        item.setText(f"{name} — unavailable")
        item.setToolTip(f"{name}: {reason}")

    def is_available(self, device: str) -> bool:
        i = self.findData(device)
        model = self.model()
        assert isinstance(model, QStandardItemModel)
        return i >= 0 and model.item(i).isEnabled()

    def _on_index(self, index: int) -> None:
        if index >= 0:
            self.device_changed.emit(self.device())
