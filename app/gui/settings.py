"""User preferences: defaults in one dataclass, persisted with QSettings."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "resnet-studio"
APPLICATION = "resnet-studio"


@dataclass(frozen=True)
class Defaults:
    """Every default the GUI uses, in one place."""

    # Pen width as a fraction of the canvas side. MNIST strokes are ~2.8 px in a 20 px
    # digit box (14% of the digit); a digit filling ~70% of the canvas then wants ~1/10.
    pen_width: float = 0.09
    pen_width_min: float = 0.03
    pen_width_max: float = 0.20
    # Live prediction while drawing: at most one request per interval (latest wins).
    live_interval_ms: int = 60
    # "Show why" on the canvas: explain once the drawing has been still this long, so the
    # explanations (which share the inference thread) do not slow the live prediction.
    explain_settle_ms: int = 150
    window_size: tuple[int, int] = (1180, 820)
    # Resolution the canvas is rendered at for the model (prepare() rescales it anyway).
    render_size: int = 280
    thumbnail_px: int = 40


DEFAULTS = Defaults()


class AppSettings:
    """Typed access to the stored preferences (window geometry, pen width, last model).

    Uses an INI file in the user scope, so tests can redirect it with
    `QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)`.
    """

    def __init__(self, store: QSettings | None = None) -> None:
        self._store = store or QSettings(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
        )

    @property
    def pen_width(self) -> float:
        try:
            value = float(self._store.value("canvas/pen_width", DEFAULTS.pen_width))
        except (TypeError, ValueError):
            return DEFAULTS.pen_width
        return min(max(value, DEFAULTS.pen_width_min), DEFAULTS.pen_width_max)

    @pen_width.setter
    def pen_width(self, value: float) -> None:
        self._store.setValue("canvas/pen_width", float(value))

    @property
    def last_model(self) -> str | None:
        value = self._store.value("model/last", "")
        return str(value) if value else None

    @last_model.setter
    def last_model(self, path: str | None) -> None:
        self._store.setValue("model/last", path or "")

    @property
    def geometry(self) -> QByteArray | None:
        value = self._store.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._store.setValue("window/geometry", value)

    @property
    def store(self) -> QSettings:
        """The QSettings behind these preferences, for widgets that keep their own keys
        (the Train form) in the same file."""
        return self._store

    def sync(self) -> None:
        """Writes pending changes to disk now."""
        self._store.sync()
