"""The training form: dataset, architecture and hyperparameters, remembered in QSettings.

Values are checked live with `TrainConfig.validate()` (one source of the rules and of
their wording); the first problem is shown under the form and marks its field.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.core.config import TrainConfig, TrainingError
from app.core.data import BUILTIN, default_data_dir
from app.core.datarequest import DataRequest
from app.core.models import ARCHITECTURES
from app.core.recipes import (
    RECIPE_LABELS,
    RECIPE_TITLES,
    RECIPES,
    default_config,
    recipe_config,
    recipe_for,
)

DATASETS = [("MNIST digits", "mnist"), ("Fashion-MNIST", "fashion-mnist"), ("Image folder", "folder")]
SETTINGS_GROUP = "train_form"
INVALID_STYLE = "border: 1px solid #d9534f; border-radius: 3px;"


def suggested(recipe: str) -> tuple[str, int, int, float]:
    """(architecture, epochs, batch size, learning rate) the form proposes for a recipe."""
    cfg = recipe_config(recipe)
    return cfg.arch, cfg.epochs, cfg.batch_size, cfg.lr


class TrainForm(QWidget):
    """Dataset + hyperparameters of a run.

    Signals:
        validity_changed(str): the first problem with the current values ("" = valid).
        changed(): a value changed (what the run would be has changed).
    """

    validity_changed = Signal(str)
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainForm")
        d = recipe_config(recipe_for(DATASETS[0][1]))  # what the first dataset proposes
        _, epochs, _, _ = suggested(recipe_for(DATASETS[0][1]))

        self.dataset_combo = QComboBox(objectName="datasetCombo")
        for label, key in DATASETS:
            self.dataset_combo.addItem(label, key)
        self.folder_edit = QLineEdit(objectName="dataFolderEdit")
        self.folder_edit.setClearButtonEnabled(True)
        self.browse_button = QPushButton("Browse…", objectName="browseButton")
        self.browse_button.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.setContentsMargins(0, 0, 0, 0)
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        self.download_check = QCheckBox("Download if not found", objectName="downloadCheck")
        self.image_size_spin = QSpinBox(objectName="imageSizeSpin", minimum=16, maximum=512, value=64, suffix=" px")
        self.image_size_spin.setToolTip("Image folders: images are resized to this square size")

        self.arch_combo = QComboBox(objectName="archCombo")
        for name, info in ARCHITECTURES.items():
            self.arch_combo.addItem(name, name)
            self.arch_combo.setItemData(self.arch_combo.count() - 1, info.description, 3)  # ToolTipRole
        self.arch_combo.setCurrentIndex(max(self.arch_combo.findData(d.arch), 0))
        # Ranges are wider than the valid ones on purpose: an out-of-range value gets a
        # reason from TrainConfig.validate() instead of being silently refused.
        self.recipe_combo = QComboBox(objectName="recipeCombo")
        for key in RECIPES:
            self.recipe_combo.addItem(RECIPE_TITLES[key], key)
            self.recipe_combo.setItemData(self.recipe_combo.count() - 1, f"Augmentation: {RECIPE_LABELS[key]}", 3)
        self.recipe_combo.setToolTip(
            "Default epochs, batch size, learning rate and augmentation for this kind of image; "
            "picked from the dataset, yours to change"
        )
        self.epochs_spin = QSpinBox(objectName="epochsSpin", minimum=0, maximum=99999, value=epochs)
        self.batch_spin = QSpinBox(objectName="batchSpin", minimum=0, maximum=999999, value=d.batch_size)
        self.lr_edit = QLineEdit(f"{d.lr:g}", objectName="lrEdit")
        self.lr_edit.setToolTip("Peak learning rate of the one-cycle schedule (SGD + Nesterov)")
        self.augment_check = QCheckBox(objectName="augmentCheck")
        self.augment_check.setChecked(d.augment)
        self.augment_check.setToolTip("Random changes to every training batch, on the device (see Recipe)")
        # Outlier exposure (app.core.exposure): the weight of the "none of these" loss.
        self.outlier_spin = QDoubleSpinBox(objectName="outlierSpin", minimum=0, maximum=99, decimals=2, singleStep=0.1)
        self.outlier_spin.setSpecialValueText("off")
        self.outlier_spin.setValue(d.outlier_exposure)
        self.outlier_spin.setToolTip(
            "Also show the model synthetic images of none of its classes (strokes, shapes, blobs; "
            "letters for digit models) with a 'none of these' target, at this weight (0.5 is usual): "
            "it then says 'this does not look like ...' far more often. Each step costs about twice as long."
        )
        self.val_spin = QDoubleSpinBox(objectName="valSplitSpin", minimum=0, maximum=100, decimals=1, suffix=" %")
        self.val_spin.setValue(100 * d.val_fraction)
        self.seed_spin = QSpinBox(objectName="seedSpin", minimum=0, maximum=2**31 - 1, value=d.seed)
        self.limit_spin = QSpinBox(objectName="limitSpin", minimum=0, maximum=10**8, value=0)
        self.limit_spin.setSpecialValueText("all")
        self.limit_spin.setToolTip("Train on the first N images only (quick runs); 'all' uses everything")
        self.error_label = QLabel(objectName="formError", wordWrap=True)
        self.error_label.setStyleSheet("color: #d9534f;")
        self.error_label.hide()

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Dataset", self.dataset_combo)
        form.addRow("Data folder", folder_row)
        form.addRow("", self.download_check)
        form.addRow("Image size", self.image_size_spin)
        form.addRow("Architecture", self.arch_combo)
        form.addRow("Recipe", self.recipe_combo)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Learning rate", self.lr_edit)
        form.addRow("Augmentation", self.augment_check)
        form.addRow("Outlier exposure", self.outlier_spin)
        form.addRow("Validation split", self.val_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Max. images", self.limit_spin)
        form.addRow(self.error_label)
        self._form = form

        self._fields = {
            "epochs": self.epochs_spin, "batch size": self.batch_spin, "learning rate": self.lr_edit,
            "validation": self.val_spin, "limit": self.limit_spin, "unknown architecture": self.arch_combo,
            "data": self.folder_edit, "outlier exposure": self.outlier_spin,
        }  # fmt: skip
        for w in (self.epochs_spin, self.batch_spin, self.seed_spin, self.limit_spin, self.image_size_spin):
            w.valueChanged.connect(self._revalidate)
        self.val_spin.valueChanged.connect(self._revalidate)
        self.outlier_spin.valueChanged.connect(self._revalidate)
        self.lr_edit.textChanged.connect(self._revalidate)
        self.folder_edit.textChanged.connect(self._revalidate)
        self.arch_combo.currentIndexChanged.connect(self._revalidate)
        self.augment_check.toggled.connect(self._revalidate)
        self.dataset_combo.currentIndexChanged.connect(self._dataset_picked)
        self.recipe_combo.currentIndexChanged.connect(self._recipe_changed)
        self._last_error: str | None = None
        self._loading = False
        self._recipe = self.recipe()
        self._recipe_changed()
        self._dataset_changed()

    # --- values ------------------------------------------------------------------------------

    def dataset(self) -> str:
        return str(self.dataset_combo.currentData())

    def recipe(self) -> str:
        return str(self.recipe_combo.currentData())

    def config(self, device: str = "auto") -> TrainConfig:
        """The run's settings.

        Raises:
            TrainingError: a value is out of range (the message names it).
        """
        text = self.lr_edit.text().strip()
        try:
            lr = float(text)
        except ValueError:
            raise TrainingError(f"learning rate must be a number, not {text!r}") from None
        cfg = default_config(
            self.dataset(),
            recipe=self.recipe(),
            arch=str(self.arch_combo.currentData()),
            epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(),
            lr=lr,
            augment=self.augment_check.isChecked(),
            outlier_exposure=round(self.outlier_spin.value(), 4),
            val_fraction=round(self.val_spin.value() / 100, 4),
            seed=self.seed_spin.value(),
            limit=self.limit_spin.value(),
            device=device,
        )
        cfg.validate()
        return cfg

    def data_request(self) -> DataRequest:
        """What to load.

        Raises:
            TrainingError: no folder for an image-folder dataset, or a missing folder.
        """
        key = self.dataset()
        folder = self.folder_edit.text().strip()
        if key == "folder":
            if not folder:
                raise TrainingError("data: choose an image folder with one subfolder per class")
            if not Path(folder).is_dir():
                raise TrainingError(f"data: folder not found: {folder}")
            return DataRequest(folder, image_size=self.image_size_spin.value())
        if folder and not Path(folder).is_dir() and not self.download_check.isChecked():
            raise TrainingError(f"data: folder not found: {folder}")
        return DataRequest(key, folder or None, self.download_check.isChecked())

    def data_slug(self) -> str:
        """Short dataset name for model file names."""
        key = self.dataset()
        if key == "folder":
            name = Path(self.folder_edit.text().strip()).name or "images"
            return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name.lower())
        return key

    def error(self) -> str:
        """The first problem with the current values, or ""."""
        try:
            self.data_request()
            self.config()
        except TrainingError as e:
            return str(e)
        return ""

    def set_locked(self, locked: bool) -> None:
        """Disables editing while a run uses these values."""
        for i in range(self._form.rowCount()):
            for role in (QFormLayout.ItemRole.FieldRole, QFormLayout.ItemRole.SpanningRole):
                item = self._form.itemAt(i, role)
                if item is None:
                    continue
                if item.widget() is not None and item.widget() is not self.error_label:
                    item.widget().setEnabled(not locked)
                elif item.layout() is not None:
                    for j in range(item.layout().count()):
                        w = item.layout().itemAt(j).widget()
                        if w is not None:
                            w.setEnabled(not locked)
        if not locked:
            self._dataset_changed()

    # --- settings ------------------------------------------------------------------------------

    def save_settings(self, settings: QSettings) -> None:
        settings.beginGroup(SETTINGS_GROUP)
        settings.setValue("dataset", self.dataset())
        settings.setValue("folder", self.folder_edit.text())
        settings.setValue("download", self.download_check.isChecked())
        settings.setValue("image_size", self.image_size_spin.value())
        settings.setValue("arch", self.arch_combo.currentData())
        settings.setValue("recipe", self.recipe())
        settings.setValue("epochs", self.epochs_spin.value())
        settings.setValue("batch_size", self.batch_spin.value())
        settings.setValue("lr", self.lr_edit.text())
        settings.setValue("augment", self.augment_check.isChecked())
        settings.setValue("outlier_exposure", self.outlier_spin.value())
        settings.setValue("val_percent", self.val_spin.value())
        settings.setValue("seed", self.seed_spin.value())
        settings.setValue("limit", self.limit_spin.value())
        settings.endGroup()

    def load_settings(self, settings: QSettings) -> None:
        """Restores saved values; unknown or broken entries keep the defaults."""
        settings.beginGroup(SETTINGS_GROUP)
        self._loading = True  # restored values are the user's: no recipe suggestions
        try:
            def num(key: str, default, cast=int):
                try:
                    return cast(settings.value(key, default))
                except (TypeError, ValueError):
                    return default

            def flag(key: str, default: bool) -> bool:
                v = settings.value(key, default)
                return v in (True, "true", "1", 1) if not isinstance(v, bool) else v

            i = self.dataset_combo.findData(settings.value("dataset", self.dataset()))
            if i >= 0:
                self.dataset_combo.setCurrentIndex(i)
            self.folder_edit.setText(str(settings.value("folder", "") or ""))
            self.download_check.setChecked(flag("download", False))
            self.image_size_spin.setValue(num("image_size", self.image_size_spin.value()))
            i = self.arch_combo.findData(settings.value("arch", ""))
            if i >= 0:
                self.arch_combo.setCurrentIndex(i)
            i = self.recipe_combo.findData(settings.value("recipe", recipe_for(self.dataset())))
            if i >= 0:
                self.recipe_combo.setCurrentIndex(i)
            self.epochs_spin.setValue(num("epochs", self.epochs_spin.value()))
            self.batch_spin.setValue(num("batch_size", self.batch_spin.value()))
            self.lr_edit.setText(str(settings.value("lr", self.lr_edit.text())))
            self.augment_check.setChecked(flag("augment", True))
            self.outlier_spin.setValue(num("outlier_exposure", self.outlier_spin.value(), float))
            self.val_spin.setValue(num("val_percent", self.val_spin.value(), float))
            self.seed_spin.setValue(num("seed", self.seed_spin.value()))
            self.limit_spin.setValue(num("limit", 0))
        finally:
            settings.endGroup()
            self._loading = False
        self._dataset_changed()

    # --- internals ---------------------------------------------------------------------------

    def _dataset_picked(self) -> None:
        """A new dataset brings its recipe (digits for MNIST, objects otherwise)."""
        if not self._loading:
            self.recipe_combo.setCurrentIndex(max(self.recipe_combo.findData(recipe_for(self.dataset())), 0))
        self._dataset_changed()

    def _recipe_changed(self) -> None:
        """Shows what the augmentation does; proposes the recipe's architecture, epochs,
        batch size, learning rate and outlier exposure where a field still holds the
        previous proposal."""
        new = self.recipe()
        self.augment_check.setText(f"Random {RECIPE_LABELS[new]}")
        if not self._loading and new != self._recipe:
            old_a, old_e, old_b, old_lr = suggested(self._recipe)
            new_a, new_e, new_b, new_lr = suggested(new)
            if self.arch_combo.currentData() == old_a:
                self.arch_combo.setCurrentIndex(max(self.arch_combo.findData(new_a), 0))
            if self.epochs_spin.value() == old_e:
                self.epochs_spin.setValue(new_e)
            if self.batch_spin.value() == old_b:
                self.batch_spin.setValue(new_b)
            if self.lr_edit.text().strip() == f"{old_lr:g}":
                self.lr_edit.setText(f"{new_lr:g}")
            if self.outlier_spin.value() == recipe_config(self._recipe).outlier_exposure:
                self.outlier_spin.setValue(recipe_config(new).outlier_exposure)
        self._recipe = new
        self._revalidate()

    def _dataset_changed(self) -> None:
        key = self.dataset()
        builtin = key in BUILTIN
        self.download_check.setVisible(builtin)
        self._form.setRowVisible(self.download_check, builtin)
        self._form.setRowVisible(self.image_size_spin, not builtin)
        if builtin:
            found = default_data_dir(key)
            self.folder_edit.setPlaceholderText(
                f"auto: {found}" if found else "not found here: choose the folder with the IDX files, or download"
            )
        else:
            self.folder_edit.setPlaceholderText("a folder with one subfolder per class")
        self._revalidate()

    def _browse(self) -> None:
        start = self.folder_edit.text() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose the data folder", start)
        if folder:
            self.folder_edit.setText(folder)

    def _revalidate(self) -> None:
        err = self.error()
        for w in self._fields.values():
            w.setStyleSheet("")
        if err:
            for prefix, w in self._fields.items():
                if err.startswith(prefix):
                    w.setStyleSheet(INVALID_STYLE)
                    break
        self.error_label.setText(err)
        self.error_label.setVisible(bool(err))
        if err != self._last_error:
            self._last_error = err
            self.validity_changed.emit(err)
        self.changed.emit()
