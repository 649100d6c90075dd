"""Thread-safe controls of a long run: pause, resume, cancel and device moves, requested
from any thread and acted on by the run between two steps (flags, never thread kills)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import torch

from app.core.devices import resolve_device
from app.core.events import Event, PauseCause, StateEvent, TrainState


class RunControl:
    """The control half of a run: any thread calls the public methods; the run calls
    `_poll_controls()` between steps and implements `_move(device)`."""

    device: torch.device

    def __init__(self) -> None:
        self._pause = threading.Event()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._device_request: str | None = None
        self._pause_cause = PauseCause.USER

    def pause(self, cause: PauseCause = PauseCause.USER) -> None:
        """Pauses before the next step; a pause already in force keeps its cause."""
        with self._lock:
            if not self._pause.is_set():
                self._pause_cause = cause
                self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    def cancel(self) -> None:
        self._cancel.set()
        self._pause.clear()

    @property
    def paused(self) -> bool:
        return self._pause.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def set_device(self, device: str) -> None:
        """Moves the run to `device` before the next step (raises ValueError if unusable)."""
        resolve_device(device)
        with self._lock:
            self._device_request = device

    def _move(self, device: torch.device) -> str:
        """Moves the run's model, optimizer and data; returns a note for the log."""
        raise NotImplementedError

    def _apply_device_request(self) -> Iterator[Event]:
        with self._lock:
            req, self._device_request = self._device_request, None
        if req is not None:
            dev = resolve_device(req)
            if dev != self.device:
                note = self._move(dev)
                yield StateEvent(TrainState.DEVICE, f"training moved to {dev}" + (f"; {note}" if note else ""), str(dev))

    def _poll_controls(self) -> Iterator[Event]:
        """Between steps: device moves (also while paused), pause (blocks here), cancel."""
        yield from self._apply_device_request()
        if self._pause.is_set() and not self._cancel.is_set():
            cause = self._pause_cause
            message = "training paused" + ("" if cause is PauseCause.USER else f": {cause}")
            yield StateEvent(TrainState.PAUSED, message, str(self.device), cause)
            while self._pause.is_set() and not self._cancel.is_set():
                yield from self._apply_device_request()
                self._cancel.wait(0.05)
            if not self._cancel.is_set():
                yield StateEvent(TrainState.RESUMED, "training resumed", str(self.device))
