"""The torchrun command of the Train tab's settings, to move a run to a bigger machine:
shown read-only and copied with one click (the GUI itself trains in one process)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.commandline import torchrun_command
from app.core.config import TrainConfig, TrainingError
from app.core.datarequest import DataRequest

Settings = Callable[[], tuple[DataRequest, TrainConfig, str]]


class CommandBox(QWidget):
    """The command for `settings()` (data, config, recipe) in N processes a machine.

    Args:
        settings: returns the current (DataRequest, TrainConfig, recipe); raises
            TrainingError while the form has a problem.

    Signals:
        command_copied(str): the command was put on the clipboard.
    """

    command_copied = Signal(str)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self.nproc_spin = QSpinBox(objectName="nprocSpin", minimum=1, maximum=1024, value=2)
        self.nproc_spin.setToolTip("Processes a machine: one per GPU, or a few on a CPU")
        self.command_edit = QLineEdit(objectName="torchrunCommand", readOnly=True)
        self.command_edit.setToolTip(
            "Runs these settings with torchrun (PyTorch's distributed launcher). For several "
            "machines replace --standalone with --nnodes M --rdzv-backend c10d "
            "--rdzv-endpoint HOST:PORT (see the README)"
        )
        self.copy_button = QPushButton("Copy command", objectName="copyCommandButton")
        self.copy_button.clicked.connect(self.copy)
        self.nproc_spin.valueChanged.connect(lambda _n: self.refresh())

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Processes:"))
        row.addWidget(self.nproc_spin)
        row.addStretch(1)
        row.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.command_edit)
        self.refresh()

    def command(self) -> str:
        """The command for the current settings, or "" while they have a problem."""
        try:
            request, config, recipe = self._settings()
            return torchrun_command(request, config, recipe, self.nproc_spin.value())
        except (TrainingError, ValueError):
            return ""

    def refresh(self) -> None:
        """Shows the command for the current settings (call when they change)."""
        cmd = self.command()
        self.command_edit.setText(cmd)
        self.command_edit.setCursorPosition(0)
        self.copy_button.setEnabled(bool(cmd))

    def copy(self) -> None:
        """Puts the command on the clipboard."""
        self.refresh()
        cmd = self.command_edit.text()
        if cmd:
            QGuiApplication.clipboard().setText(cmd)
            self.command_copied.emit(cmd)
