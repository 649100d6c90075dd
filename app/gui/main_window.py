"""The main window: composes the tabs, the model selector, menus and the status bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget, QToolBar

from app.core import resources
from app.gui.classify_tab import ClassifyTab
from app.gui.model_selector import ModelSelector
from app.gui.settings import DEFAULTS, AppSettings


class MainWindow(QMainWindow):
    """ResNet Studio's window. `MainWindow()` opens with the last used model, else the
    shipped one; `model_path` overrides both.

    `defer_train_tab=True` (the app's start-up) shows a placeholder Train tab until
    `load_train_tab()`: the trainer imports torch, which should not delay the window.
    """

    def __init__(
        self, model_path: str | None = None, settings: AppSettings | None = None, defer_train_tab: bool = False
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("ResNet Studio")
        self.settings = settings or AppSettings()

        self.model_selector = ModelSelector()
        self.classify_tab = ClassifyTab(pen_width=self.settings.pen_width)
        self.train_tab = None
        self.evaluate_tab = None
        self.examples_tab = None
        self._warmed_up = False
        self._startup_model: str | None = None  # a chosen start-up model not yet loaded
        self._fallback_note = ""  # why the built-in model is used instead
        self.tabs = QTabWidget()
        self.tabs.setObjectName("tabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.classify_tab, "Classify")
        placeholder = QLabel("Loading the trainer…")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.tabs.addTab(placeholder, "Train")
        self.setCentralWidget(self.tabs)

        toolbar = QToolBar("Model")
        toolbar.setObjectName("modelToolbar")
        toolbar.setMovable(False)
        toolbar.setFloatable(False)
        toolbar.setContextMenuPolicy(Qt.ContextMenuPolicy.PreventContextMenu)
        model_label = QLabel("  Model ")
        toolbar.addWidget(model_label)
        toolbar.addWidget(self.model_selector)
        self.addToolBar(toolbar)

        self.model_label = QLabel("No model")
        self.model_label.setObjectName("modelStatus")
        self.device_label = QLabel("Inference: –")
        self.device_label.setToolTip("Where the Classify tab runs the model")
        self.device_label.setObjectName("deviceStatus")
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.device_label)

        self._build_actions()
        self._wire()
        if not defer_train_tab:
            self.load_train_tab()
        if self.settings.geometry is None or not self.restoreGeometry(self.settings.geometry):
            self.resize(*DEFAULTS.window_size)
        self._choose_initial_model(model_path)

    # --- composition ------------------------------------------------------------------------

    def _action(self, text: str, shortcuts, slot, classify_only: bool = False) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if classify_only:  # drawing shortcuts must not fire while the Train tab is shown

            def run() -> None:
                if self.tabs.currentWidget() is self.classify_tab:
                    slot()

            action.triggered.connect(run)
        else:
            action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        tab = self.classify_tab
        open_images = self._action("&Open Images…", [QKeySequence.StandardKey.Open], self._open_images)
        open_folder = self._action("Open &Folder…", ["Ctrl+Shift+O"], self._open_folder)
        load_model = self._action("Open &Model File…", [], self.model_selector.browse)
        export = self._action("&Export Results as CSV…", ["Ctrl+E"], tab.batch.choose_export_file)
        quit_ = self._action("&Quit", [QKeySequence.StandardKey.Quit], self.close)
        paste = self._action("&Paste Image", [QKeySequence.StandardKey.Paste], self._paste)
        undo = self._action("&Undo Stroke", [QKeySequence.StandardKey.Undo], tab.undo, classify_only=True)
        clear = self._action("&Clear Canvas", ["Esc", "Delete"], tab.clear, classify_only=True)
        file_menu = self.menuBar().addMenu("&File")
        for a in (open_images, open_folder, None, load_model, export, None, quit_):
            file_menu.addSeparator() if a is None else file_menu.addAction(a)
        edit_menu = self.menuBar().addMenu("&Edit")
        for a in (undo, clear, None, paste):
            edit_menu.addSeparator() if a is None else edit_menu.addAction(a)

    def _show_classify(self) -> None:
        self.tabs.setCurrentWidget(self.classify_tab)

    def _open_images(self) -> None:
        self._show_classify()
        self.classify_tab.open_files()

    def _open_folder(self) -> None:
        self._show_classify()
        self.classify_tab.open_folder()

    def _paste(self) -> None:
        self._show_classify()
        self.classify_tab.paste()

    def _wire(self) -> None:
        tab = self.classify_tab
        self.model_selector.model_chosen.connect(tab.set_model)
        tab.model_loaded.connect(self._on_model_loaded)
        tab.model_failed.connect(self._on_model_failed)
        tab.status_message.connect(lambda text: self.statusBar().showMessage(text, 5000))

    def load_train_tab(self) -> None:
        """Creates the Train tab in place of its placeholder (idempotent)."""
        if self.train_tab is not None:
            return
        from app.gui.train_tab import TrainTab  # imports torch

        current = self.tabs.currentIndex()
        self.train_tab = TrainTab(settings=self.settings.store)
        placeholder = self.tabs.widget(1)
        self.tabs.removeTab(1)
        placeholder.deleteLater()
        self.tabs.insertTab(1, self.train_tab, "Train")
        self.tabs.setCurrentIndex(current)
        from app.gui.evaluate_view import EvaluateView

        self.evaluate_tab = EvaluateView()
        self.tabs.insertTab(2, self.evaluate_tab, "Evaluate")
        if self.classify_tab.model_path():
            self.evaluate_tab.set_model(self.classify_tab.model_path())
        self.evaluate_tab.status_message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        from app.gui.examples_view import ExamplesView

        self.examples_tab = ExamplesView()
        self.tabs.insertTab(3, self.examples_tab, "My examples")
        if self.classify_tab.model_path():
            self.examples_tab.set_model(self.classify_tab.model_path())
        self.examples_tab.status_message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.examples_tab.model_kept.connect(self._keep_personalised)
        self.classify_tab.example_added.connect(lambda _label: self.examples_tab.refresh())
        self.train_tab.cell_opened.connect(self._open_training_cell)
        self.train_tab.model_saved.connect(self.model_selector.add_model)
        self.train_tab.use_model_requested.connect(self._use_model)
        self.tabs.currentChanged.connect(self._warm_up_training)

    def _warm_up_training(self, index: int) -> None:
        """First visit of the Train tab: warm up torch's training path off the GUI thread."""
        if self.tabs.widget(index) is not self.train_tab or self._warmed_up:
            return
        self._warmed_up = True
        import threading

        from app.core.warmup import warm_up

        threading.Thread(target=warm_up, name="warm-up", daemon=True).start()

    def _choose_initial_model(self, model_path: str | None) -> None:
        last = self.settings.last_model
        if model_path is None and last and Path(last).is_file():
            model_path = last
        chosen = str(model_path or resources.default_model_path())
        # A damaged model at start-up falls back to the built-in one (see _on_model_failed).
        builtin = str(resources.default_model_path())
        self._startup_model = chosen if Path(chosen).resolve() != Path(builtin).resolve() else None
        self.model_selector.select_path(chosen)

    def _open_training_cell(self, source, true: int, predicted: int) -> None:
        """A Train-tab confusion cell: the saved model's images of that cell, evaluated
        in the Evaluate tab on the same held-out split."""
        self.evaluate_tab.evaluate(source, (true, predicted))
        self.tabs.setCurrentWidget(self.evaluate_tab)

    def _use_model(self, path: str) -> None:
        """The Train tab's "use this model": switch the Classify tab to it now."""
        self.model_selector.select_path(path)
        self._show_classify()

    def _on_model_loaded(self, path: str, summary: str, device: str) -> None:
        self._startup_model = None
        note, self._fallback_note = self._fallback_note, ""
        if note:  # shown after the tab cleared its banner for the loaded model
            self.classify_tab.banner.show_message(note)
        self.statusBar().showMessage(f"Loaded {Path(path).stem}", 3000)
        self.model_label.setText(f"Model: {summary}")
        self.model_label.setToolTip(path)
        self.device_label.setText(f"Inference: {device.upper()}")
        self.settings.last_model = path
        if self.evaluate_tab is not None:
            self.evaluate_tab.set_model(path)
        if self.examples_tab is not None:
            self.examples_tab.set_model(path)
        self.model_selector.select_path(path, emit=False)

    def _on_model_failed(self, message: str) -> None:
        self.statusBar().showMessage("Could not load the model", 8000)
        current = self.classify_tab.model_path()
        startup, self._startup_model = self._startup_model, None
        if startup and not current:  # the window would open with no model: use the built-in
            name = Path(startup).stem
            self._fallback_note = (
                f"The last model used, {name}, could not be loaded ({message}). "
                "Using the built-in digit model instead."
            )
            self.model_selector.select_path(str(resources.default_model_path()))
            return
        if current:  # the previous model still classifies: show that in the list
            self.model_selector.select_path(current, emit=False)
        else:
            self.model_label.setText("Model: not loaded")
            self.model_label.setToolTip(message)

    # --- lifetime ---------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.settings.geometry = self.saveGeometry()
        self.settings.pen_width = self.classify_tab.canvas.pen_width()
        self.settings.sync()
        self.classify_tab.shutdown()
        if self.train_tab is not None:
            self.train_tab.shutdown()
        if self.evaluate_tab is not None:
            self.evaluate_tab.shutdown()
        if self.examples_tab is not None:
            self.examples_tab.shutdown()
        super().closeEvent(event)

    def _keep_personalised(self, path: str) -> None:
        """A personalised model is listed beside its base and used at once."""
        self.model_selector.add_model(path)
        self._use_model(path)


