"""Live loss and accuracy plots (pyqtgraph).

Curves are created once and fed with `setData()`; long step series are downsampled by
pyqtgraph (peak mode keeps the spikes) and clipped to the view.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QWidget

from app.core.events import EpochEvent, StepEvent

EMA_ALPHA = 0.05  # smoothing of the step loss: ~20-step memory

# Colors chosen to stay readable on light and dark backgrounds.
RAW = (120, 144, 176, 110)
SMOOTH = (33, 118, 210)
VAL = (230, 120, 20)
TRAIN_ACC = (33, 118, 210)
VAL_ACC = (230, 120, 20)


def _plot(name: str, title: str, y_label: str, legend_offset: tuple[int, int]) -> pg.PlotWidget:
    w = pg.PlotWidget()
    w.setObjectName(name)
    w.setBackground(None)
    item = w.getPlotItem()
    item.setTitle(title, size="10pt")
    item.setLabel("bottom", "epoch")
    item.setLabel("left", y_label)
    item.showGrid(x=True, y=True, alpha=0.15)
    item.addLegend(offset=legend_offset, labelTextSize="8pt")
    item.setMenuEnabled(False)
    w.setMinimumSize(240, 180)
    return w


class TrainingPlots(QWidget):
    """Loss (per step raw + EMA, validation per epoch) and accuracy (per epoch) plots.

    Signals:
        updated(): new points were drawn.
    """

    updated = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingPlots")
        self.loss_plot = _plot("lossPlot", "Loss", "cross-entropy (log scale)", (-8, 8))
        self.accuracy_plot = _plot("accuracyPlot", "Accuracy", "%", (-8, -8))
        li = self.loss_plot.getPlotItem()
        # Log scale: the first epochs' losses (BN statistics still settling) can be 10x
        # the later ones and would flatten everything else on a linear axis.
        li.setLogMode(y=True)
        li.setDownsampling(auto=True, mode="peak")
        li.setClipToView(True)
        self.raw_curve = li.plot(pen=pg.mkPen(RAW, width=1), name="step")
        self.smooth_curve = li.plot(pen=pg.mkPen(SMOOTH, width=2), name="step (smoothed)")
        self.val_loss_curve = li.plot(
            pen=pg.mkPen(VAL, width=2), symbol="o", symbolSize=6, symbolBrush=VAL, symbolPen=None,
            name="validation",
        )  # fmt: skip
        ai = self.accuracy_plot.getPlotItem()
        ai.setYRange(0, 100, padding=0.02)
        ai.enableAutoRange(axis="y", enable=False)
        self.train_acc_curve = ai.plot(
            pen=pg.mkPen(TRAIN_ACC, width=2), symbol="o", symbolSize=5, symbolBrush=TRAIN_ACC,
            symbolPen=None, name="training",
        )  # fmt: skip
        self.val_acc_curve = ai.plot(
            pen=pg.mkPen(VAL_ACC, width=2), symbol="o", symbolSize=6, symbolBrush=VAL_ACC,
            symbolPen=None, name="validation",
        )  # fmt: skip
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.loss_plot)
        lay.addWidget(self.accuracy_plot)
        self.clear()

    def clear(self) -> None:
        """Forgets all points (a new run starts)."""
        self._step_x: list[float] = []
        self._step_y: list[float] = []
        self._smooth_y: list[float] = []
        self._ema: float | None = None
        self._epoch_x: list[float] = []
        self._val_loss: list[float] = []
        self._val_loss_x: list[float] = []
        self._train_acc: list[float] = []
        self._val_acc: list[float] = []
        self._val_acc_x: list[float] = []
        for c in (self.raw_curve, self.smooth_curve, self.val_loss_curve, self.train_acc_curve, self.val_acc_curve):
            c.setData([], [])

    def add_steps(self, events: list[StepEvent]) -> None:
        """Appends step losses (x in epochs) and redraws the step curves once."""
        if not events:
            return
        for ev in events:
            x = (ev.global_step + 1) / max(ev.steps_per_epoch, 1)
            self._ema = ev.loss if self._ema is None else self._ema + EMA_ALPHA * (ev.loss - self._ema)
            self._step_x.append(x)
            self._step_y.append(ev.loss)
            self._smooth_y.append(self._ema)
        x = np.asarray(self._step_x)
        self.raw_curve.setData(x, np.asarray(self._step_y))
        self.smooth_curve.setData(x, np.asarray(self._smooth_y))
        self.updated.emit()

    def add_epoch(self, ev: EpochEvent) -> None:
        """Appends the epoch's validation loss and training/validation accuracy."""
        x = float(ev.epoch + 1)
        self._epoch_x.append(x)
        self._train_acc.append(100.0 * ev.train_acc)
        self.train_acc_curve.setData(self._epoch_x, self._train_acc)
        if ev.val_loss is not None:
            self._val_loss_x.append(x)
            self._val_loss.append(ev.val_loss)
            self.val_loss_curve.setData(self._val_loss_x, self._val_loss)
        if ev.val_acc is not None:
            self._val_acc_x.append(x)
            self._val_acc.append(100.0 * ev.val_acc)
            self.val_acc_curve.setData(self._val_acc_x, self._val_acc)
        self.accuracy_plot.getPlotItem().setXRange(0.5, max(x, 1.0) + 0.5, padding=0)
        self.updated.emit()
