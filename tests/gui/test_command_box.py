"""The Train tab's "Copy command": the torchrun command of the form's settings, shown
and copied, following the form as it changes."""

from __future__ import annotations

import shlex

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLineEdit, QPushButton, QSpinBox

from app.gui.train_tab import TrainTab
from tests.gui.train_fixtures import *  # noqa: F403 - pytest fixtures (studio_home, ...)


@pytest.fixture
def tab(qtbot, tmp_path, studio_home):
    w = TrainTab(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.show()
    yield w
    w.shutdown()


def test_copy_command_puts_the_forms_torchrun_command_on_the_clipboard(qtbot, tab):
    f = tab.form
    f.dataset_combo.setCurrentIndex(f.dataset_combo.findData("mnist"))
    f.epochs_spin.setValue(7)
    f.lr_edit.setText("0.05")
    tab.findChild(QSpinBox, "nprocSpin").setValue(4)
    shown = tab.findChild(QLineEdit, "torchrunCommand").text()
    argv = shlex.split(shown)
    assert argv[:6] == ["torchrun", "--standalone", "--nproc-per-node", "4", "-m", "app"]
    assert argv[argv.index("--epochs") + 1] == "7" and argv[argv.index("--lr") + 1] == "0.05"

    with qtbot.waitSignal(tab.command_box.command_copied) as copied:
        qtbot.mouseClick(tab.findChild(QPushButton, "copyCommandButton"), Qt.MouseButton.LeftButton)
    assert copied.args == [shown] and QGuiApplication.clipboard().text() == shown

    f.augment_check.setChecked(False)  # the command follows the form
    assert "--no-augment" in tab.findChild(QLineEdit, "torchrunCommand").text()


def test_no_command_while_the_form_has_a_problem(tab):
    tab.form.lr_edit.setText("fast")
    assert tab.findChild(QLineEdit, "torchrunCommand").text() == ""
    assert not tab.findChild(QPushButton, "copyCommandButton").isEnabled()
