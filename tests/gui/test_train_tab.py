"""The Train tab as a user drives it: form, start/pause/resume/stop, plots, model file."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton

import app.core.training as core_training
from app.core.devices import list_devices
from app.core.events import TrainState
from app.gui.device_selector import DeviceSelector
from app.gui.train_tab import TrainTab, unique_model_path
from tests.gui.train_fixtures import *  # noqa: F403 - pytest fixtures (mnist_dir, ...)

TIMEOUT_MS = 120_000  # generous: the CI machine is a shared 2-core box


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def tab(qtbot, settings, studio_home):
    w = TrainTab(settings=settings)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    yield w
    w.shutdown()
    assert not w.is_running()


def fill_quick_run(tab: TrainTab, mnist_dir: Path, epochs: int = 2) -> None:
    f = tab.form
    f.dataset_combo.setCurrentIndex(f.dataset_combo.findData("mnist"))
    f.folder_edit.setText(str(mnist_dir))
    f.arch_combo.setCurrentIndex(f.arch_combo.findData("resnet-mnist-small"))
    f.epochs_spin.setValue(epochs)
    f.batch_spin.setValue(64)
    f.lr_edit.setText("0.2")
    f.limit_spin.setValue(300)
    f.val_spin.setValue(10)
    tab.device_selector.set_device("cpu")


def button(tab: TrainTab, name: str) -> QPushButton:
    b = tab.findChild(QPushButton, name)
    assert b is not None, name
    return b


def test_public_interface(tab):
    assert tab.objectName() == "trainTab"
    for name in ("startButton", "pauseButton", "stopButton", "useModelButton"):
        button(tab, name)
    assert tab.findChild(QProgressBar, "trainProgress") is not None
    assert tab.findChild(DeviceSelector, "deviceSelector") is not None
    assert tab.loss_plot.objectName() == "lossPlot" and tab.accuracy_plot.objectName() == "accuracyPlot"
    assert not tab.is_running()
    assert not button(tab, "pauseButton").isEnabled() and not button(tab, "stopButton").isEnabled()


def test_full_run_fills_plots_and_saves_a_model(qtbot, tab, mnist_dir, studio_home, warm_torch):
    fill_quick_run(tab, mnist_dir)
    saved: list[str] = []
    tab.model_saved.connect(saved.append)
    with qtbot.waitSignal(tab.running_changed, timeout=TIMEOUT_MS, check_params_cb=lambda r: not r):
        qtbot.mouseClick(button(tab, "startButton"), Qt.MouseButton.LeftButton)
        assert tab.is_running()
        assert not tab.form.epochs_spin.isEnabled()  # locked while it runs
    assert not tab.is_running()
    assert len(saved) == 1
    model = Path(saved[0])
    assert model.parent == studio_home / "models"
    assert model.name.startswith("mnist-resnet-mnist-small-") and model.suffix == ".safetensors"
    assert model.exists() and model.with_suffix(".json").exists() and model.with_suffix(".ckpt").exists()

    plots = tab.plots
    n_steps = 2 * (270 // 64)  # 300 images, 10% validation, full batches only
    assert len(plots.raw_curve.getData()[1]) == n_steps
    assert len(plots.smooth_curve.getData()[1]) == n_steps
    assert len(plots.val_loss_curve.getData()[1]) == 2
    assert len(plots.val_acc_curve.getData()[1]) == 2
    assert len(plots.train_acc_curve.getData()[1]) == 2
    m = tab.confusion.matrix()
    assert len(m) == 10 and sum(map(sum, m)) == 30  # the 30 validation images
    assert len(tab.confusion.per_class_accuracy()) == 10
    assert tab.progress.value() == tab.progress.maximum() == n_steps
    assert "saved" in tab.log.toPlainText()
    assert tab.form.epochs_spin.isEnabled()
    # The finished model's calibration (fitted on the 30 validation images) is shown.
    shown = tab.result_box.label.text()
    assert "calibrated: confidence off by " in shown and "validation ECE" in shown
    assert "temperature" in tab.log.toPlainText()

    use = button(tab, "useModelButton")
    assert use.isEnabled()
    with qtbot.waitSignal(tab.use_model_requested) as blocker:
        qtbot.mouseClick(use, Qt.MouseButton.LeftButton)
    assert blocker.args == [str(model)]


def test_pause_resume_stop(qtbot, tab, mnist_dir, warm_torch):
    fill_quick_run(tab, mnist_dir, epochs=20)
    pause, stop = button(tab, "pauseButton"), button(tab, "stopButton")
    t = None
    with qtbot.waitSignal(tab.plots.updated, timeout=TIMEOUT_MS):
        assert tab.start_training()
        t = tab.thread_object()
    with qtbot.waitSignal(t.state_changed, timeout=TIMEOUT_MS, check_params_cb=lambda e: e.state is TrainState.PAUSED):
        qtbot.mouseClick(pause, Qt.MouseButton.LeftButton)
    assert pause.text() == "Resume" and tab.is_running()
    n_paused = len(tab.plots.raw_curve.getData()[1])
    with qtbot.waitSignal(t.state_changed, timeout=TIMEOUT_MS, check_params_cb=lambda e: e.state is TrainState.RESUMED):
        qtbot.mouseClick(pause, Qt.MouseButton.LeftButton)
    assert pause.text() == "Pause"
    with qtbot.waitSignal(tab.plots.updated, timeout=TIMEOUT_MS):
        pass
    assert len(tab.plots.raw_curve.getData()[1]) > n_paused  # training went on
    with qtbot.waitSignal(tab.running_changed, timeout=TIMEOUT_MS, check_params_cb=lambda r: not r):
        qtbot.mouseClick(stop, Qt.MouseButton.LeftButton)
        assert not stop.isEnabled()
    assert "stopped" in tab.log.toPlainText()
    assert button(tab, "startButton").isEnabled()


def test_device_switch_during_run(qtbot, tab, mnist_dir, warm_torch):
    fill_quick_run(tab, mnist_dir, epochs=1)
    with qtbot.waitSignal(tab.plots.updated, timeout=TIMEOUT_MS):
        tab.start_training()
    with qtbot.waitSignal(tab.running_changed, timeout=TIMEOUT_MS, check_params_cb=lambda r: not r):
        tab.device_selector.setCurrentIndex(tab.device_selector.findData("cpu"))
        tab.device_selector.device_changed.emit("cpu")  # CPU -> CPU: accepted, nothing moves
    assert tab.last_model() is not None
    assert not tab.error_banner.isVisible()


def test_device_problem_offers_cpu_and_resumes(qtbot, tab, mnist_dir, monkeypatch, warm_torch):
    # The first augmentation call fails like a GPU running out of memory.
    real = core_training.augment_batch
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kw)

    monkeypatch.setattr(core_training, "augment_batch", flaky)
    fill_quick_run(tab, mnist_dir, epochs=1)
    tab.form.augment_check.setChecked(True)
    assert tab.start_training()
    qtbot.waitUntil(tab.problem_banner.isVisible, timeout=TIMEOUT_MS)
    text = tab.problem_banner.label.text()
    assert "out of memory" in text and "paused" in text
    assert button(tab, "pauseButton").text() == "Resume"
    # the run's PAUSED event follows the problem: the status still says why it paused
    qtbot.waitUntil(lambda: "training paused: device problem" in tab.log.toPlainText(), timeout=TIMEOUT_MS)
    assert tab.status_label.text() == "Paused: device problem"
    with qtbot.waitSignal(tab.model_saved, timeout=TIMEOUT_MS):
        qtbot.mouseClick(tab.problem_banner.action, Qt.MouseButton.LeftButton)
    assert tab.device_selector.device() == "cpu"
    assert not tab.problem_banner.isVisible()
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=TIMEOUT_MS)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("epochs", 0, "epochs must be 1..1000"),
        ("epochs", 5000, "epochs must be 1..1000"),
        ("batch", 0, "batch size must be"),
        ("lr", "-1", "learning rate must be in"),
        ("lr", "fast", "learning rate must be a number"),
        ("val", 95.0, "validation fraction must be"),
    ],
)
def test_invalid_values_show_a_reason_and_do_not_start(qtbot, tab, field, value, reason):
    f = tab.form
    {
        "epochs": lambda: f.epochs_spin.setValue(value),
        "batch": lambda: f.batch_spin.setValue(value),
        "lr": lambda: f.lr_edit.setText(value),
        "val": lambda: f.val_spin.setValue(value),
    }[field]()
    error = tab.findChild(QLabel, "formError")
    assert error.isVisible() and reason in error.text()
    assert not button(tab, "startButton").isEnabled()
    assert tab.start_training() is False
    assert not tab.is_running()
    assert reason in tab.error_banner.label.text()


def test_image_folder_needs_a_folder(tab):
    f = tab.form
    f.dataset_combo.setCurrentIndex(f.dataset_combo.findData("folder"))
    f.folder_edit.setText("")
    assert "choose an image folder" in f.error()
    assert not button(tab, "startButton").isEnabled()


def test_worker_error_is_shown_inline_and_the_tab_keeps_working(qtbot, tab, tmp_path):
    folder = tmp_path / "pets"
    (folder / "cats").mkdir(parents=True)  # one class only: DataError in the worker
    f = tab.form
    f.dataset_combo.setCurrentIndex(f.dataset_combo.findData("folder"))
    f.folder_edit.setText(str(folder))
    with qtbot.waitSignal(tab.running_changed, timeout=TIMEOUT_MS, check_params_cb=lambda r: not r):
        assert tab.start_training()
    assert tab.error_banner.isVisible()
    assert "at least two classes" in tab.error_banner.label.text()
    assert button(tab, "startButton").isEnabled()
    assert tab.last_model() is None


def test_form_is_remembered(qtbot, settings, studio_home, tmp_path):
    a = TrainTab(settings=settings)
    qtbot.addWidget(a)
    a.form.dataset_combo.setCurrentIndex(a.form.dataset_combo.findData("fashion-mnist"))
    a.form.recipe_combo.setCurrentIndex(a.form.recipe_combo.findData("digits"))
    a.form.epochs_spin.setValue(7)
    a.form.batch_spin.setValue(32)
    a.form.lr_edit.setText("0.05")
    a.form.augment_check.setChecked(False)
    a.form.seed_spin.setValue(42)
    a.form.arch_combo.setCurrentIndex(a.form.arch_combo.findData("resnet-mnist-small"))
    a.shutdown()
    b = TrainTab(settings=settings)
    qtbot.addWidget(b)
    assert b.form.epochs_spin.value() == 7 and b.form.batch_spin.value() == 32
    assert b.form.lr_edit.text() == "0.05" and not b.form.augment_check.isChecked()
    assert b.form.seed_spin.value() == 42
    assert b.form.arch_combo.currentData() == "resnet-mnist-small"
    assert b.form.dataset() == "fashion-mnist" and b.form.recipe() == "digits"


def test_device_selector_lists_unavailable_devices_disabled(qtbot):
    sel = DeviceSelector()
    qtbot.addWidget(sel)
    assert sel.objectName() == "deviceSelector"
    ids = [sel.itemData(i) for i in range(sel.count())]
    assert ids[0] == "cpu" and sel.is_available("cpu")
    for d in list_devices():
        assert sel.is_available(d.id) == d.available
        if not d.available:
            i = sel.findData(d.id)
            assert "unavailable" in sel.itemText(i)
            assert d.reason in sel.itemData(i, Qt.ItemDataRole.ToolTipRole)
            assert not sel.set_device(d.id)


def test_unique_model_path(tmp_path):
    first = unique_model_path(tmp_path, "mnist-resnet")
    assert first.name == "mnist-resnet.safetensors"
    first.with_suffix(".ckpt").write_bytes(b"")
    assert unique_model_path(tmp_path, "mnist-resnet").name == "mnist-resnet-2.safetensors"


def test_event_loop_keeps_running_while_training(qtbot, tab, mnist_dir, warm_torch):
    """The GUI thread keeps handling timers while the trainer runs, and sees the progress
    move between the first and the last step. (How long it may stall is a speed target:
    bench/gui_responsiveness.py.)"""
    fill_quick_run(tab, mnist_dir, epochs=2)
    seen: list[tuple[int, int]] = []
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: seen.append((tab.progress.value(), tab.progress.maximum())))
    assert tab.start_training()
    qtbot.waitSignal(tab.plots.updated, timeout=TIMEOUT_MS).wait()
    heartbeat.start(10)
    with qtbot.waitSignal(tab.running_changed, timeout=TIMEOUT_MS, check_params_cb=lambda r: not r):
        pass
    heartbeat.stop()
    assert len(seen) >= 3, "no timer ran on the GUI thread while training"
    values = [v for v, _ in seen]
    assert len(set(values)) >= 2, f"the progress bar did not move while training: {sorted(set(values))}"
    assert values[-1] == seen[-1][1]  # and ended full


def test_shutdown_keeps_the_checkpoint_and_resume_continues(qtbot, tab, mnist_dir, warm_torch):
    fill_quick_run(tab, mnist_dir, epochs=3)
    assert tab.start_training()
    t = tab.thread_object()
    out = t.out
    with qtbot.waitSignal(t.epoch, timeout=TIMEOUT_MS):
        pass
    tab.shutdown()  # as the main window does on close
    assert not tab.is_running() and not t.isRunning()
    ckpt = out.with_suffix(".ckpt")
    assert ckpt.exists(), "the checkpoint of the finished epoch is kept"

    saved: list[str] = []
    tab.model_saved.connect(saved.append)
    with qtbot.waitSignal(tab.running_changed, timeout=TIMEOUT_MS, check_params_cb=lambda r: not r):
        assert tab.start_training(resume=str(ckpt))
    assert saved == [str(out)]  # the resumed run writes the model next to its checkpoint
    assert "completed after 3 epoch(s)" in tab.log.toPlainText()
    assert len(tab.plots.val_acc_curve.getData()[1]) <= 2  # only the resumed epochs were plotted


def test_dataset_brings_its_recipe_without_overwriting_edits(tab):
    f = tab.form
    assert f.dataset() == "mnist" and f.recipe() == "digits"
    assert f.arch_combo.currentData() == "resnet-mnist-14"
    assert (f.epochs_spin.value(), f.batch_spin.value(), f.lr_edit.text()) == (16, 128, "0.2")
    assert "elastic" in f.augment_check.text()
    f.dataset_combo.setCurrentIndex(f.dataset_combo.findData("fashion-mnist"))
    assert f.recipe() == "objects" and "mirror" in f.augment_check.text()
    assert f.arch_combo.currentData() == "resnet-mnist-small"
    assert (f.epochs_spin.value(), f.batch_spin.value(), f.lr_edit.text()) == (12, 128, "0.2")
    cfg = f.config()
    assert cfg.hflip and cfg.elastic == 0 and cfg.rotate_deg == 0
    f.epochs_spin.setValue(3)  # the user's own value stays; untouched ones follow the recipe
    f.dataset_combo.setCurrentIndex(f.dataset_combo.findData("mnist"))
    assert f.recipe() == "digits" and f.arch_combo.currentData() == "resnet-mnist-14"
    assert (f.epochs_spin.value(), f.batch_spin.value(), f.lr_edit.text()) == (3, 128, "0.2")
    assert not f.config().hflip and f.config().elastic > 0
    f.dataset_combo.setCurrentIndex(f.dataset_combo.findData("folder"))
    assert f.recipe() == "objects"
    f.recipe_combo.setCurrentIndex(f.recipe_combo.findData("digits"))  # e.g. a folder of digits
    assert not f.config().hflip


def test_an_unusable_device_choice_reverts_to_the_device_in_use(qtbot, tab):
    from app.core.devices import DeviceInfo, resolve_device

    gone = "cuda:7"  # listed as usable (it was, when the list was made), but is not now
    try:
        resolve_device(gone)
        pytest.skip("this machine has a cuda:7")
    except ValueError:
        pass
    sel = tab.device_selector
    sel.set_devices([DeviceInfo("cpu", "CPU", True), DeviceInfo(gone, "GPU 7", True)])
    assert sel.device() == gone  # the preselected GPU
    sel.set_device("cpu")
    tab._device_in_use = "cpu"
    sel.setCurrentIndex(sel.findData(gone))  # the user picks it while idle
    assert sel.device() == "cpu" and not sel.is_available(gone)
    assert "unavailable" in sel.itemText(sel.findData(gone))
    assert tab.error_banner.isVisible() and "Cannot use cuda:7" in tab.error_banner.text()
    assert "Staying on cpu" in tab.error_banner.text()

    class Running:  # a run in progress whose switch fails
        def set_device(self, device: str) -> None:
            raise ValueError("the GPU went away")

    sel.set_devices([DeviceInfo("cpu", "CPU", True), DeviceInfo("cuda:8", "GPU 8", True)])
    sel.set_device("cpu")
    tab._thread = Running()
    try:
        sel.setCurrentIndex(sel.findData("cuda:8"))
        assert sel.device() == "cpu" and not sel.is_available("cuda:8")
        assert "the GPU went away" in tab.error_banner.text()
    finally:
        tab._thread = None


def test_the_saved_epochs_confusion_is_shown_when_the_run_ends(tab, tmp_path):
    """The matrix follows the epochs live; at the end it shows the best (saved) epoch's,
    so a cell click (which evaluates the saved model) opens what the matrix counts."""
    from app.core.events import EpochEvent, FinishedEvent, FinishStatus

    def epoch(i: int, matrix: list, best: bool) -> EpochEvent:
        return EpochEvent(
            epoch=i, epochs=2, train_loss=0.1, train_acc=0.9, val_loss=0.2, val_acc=0.9,
            per_class_acc=[0.9, 0.9], confusion=matrix, images_per_s=100.0, elapsed_s=1.0,
            eta_s=0.0, best=best,
        )  # fmt: skip

    tab._classes = ["a", "b"]
    tab._on_epoch(epoch(0, [[5, 0], [0, 5]], best=True))
    tab._on_epoch(epoch(1, [[4, 1], [1, 4]], best=False))
    assert tab.confusion.matrix() == [[4, 1], [1, 4]]  # live: the last epoch
    model = tmp_path / "m.safetensors"
    tab._on_training_finished(FinishedEvent(
        status=FinishStatus.COMPLETED, epochs_done=2, best_val_acc=1.0, best_epoch=0,
        model_path=str(model), elapsed_s=2.0,
    ))  # fmt: skip
    assert tab.confusion.matrix() == [[5, 0], [0, 5]]  # the saved model's epoch
    assert "epoch 1, the saved model" in tab.confusion._title
