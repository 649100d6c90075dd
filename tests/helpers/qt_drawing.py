"""Drawing on the canvas the way a person does: mouse press, many moves, release."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget

Point = tuple[float, float]


def catmull_rom(points: Sequence[Point], step: float = 0.01) -> list[Point]:
    """A smooth curve through the points (centripetal-free, uniform Catmull-Rom), sampled
    about every `step` units, like the dense points a real mouse produces."""
    if len(points) < 2:
        return list(points)
    pts = [points[0], *points, points[-1]]
    out: list[Point] = [points[0]]
    for i in range(1, len(pts) - 2):
        p0, p1, p2, p3 = pts[i - 1], pts[i], pts[i + 1], pts[i + 2]
        length = ((p2[0] - p1[0]) ** 2 + (p2[1] - p1[1]) ** 2) ** 0.5
        n = max(1, round(length / step))
        for k in range(1, n + 1):
            t = k / n
            t2, t3 = t * t, t * t * t
            out.append(
                tuple(
                    0.5
                    * (
                        2 * p1[d]
                        + (-p0[d] + p2[d]) * t
                        + (2 * p0[d] - 5 * p1[d] + 4 * p2[d] - p3[d]) * t2
                        + (-p0[d] + 3 * p1[d] - 3 * p2[d] + p3[d]) * t3
                    )
                    for d in (0, 1)
                )
            )
    return out


def draw_strokes(canvas: QWidget, strokes: Sequence[Sequence[Point]], fill: float = 0.7) -> None:
    """Draws unit-box strokes with QTest mouse events into the middle `fill` of the
    canvas's paper (its square drawing area)."""
    paper = canvas.paper_rect()
    side = paper.width() * fill
    left = paper.x() + (paper.width() - side) / 2
    top = paper.y() + (paper.height() - side) / 2

    def at(p: Point) -> QPoint:
        return QPoint(round(left + p[0] * side), round(top + p[1] * side))

    for stroke in strokes:
        path = catmull_rom(stroke)
        QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(path[0]))
        for p in path[1:]:
            QTest.mouseMove(canvas, at(p))
        QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(path[-1]))
