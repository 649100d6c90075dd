"""The confusion view of a run with too many classes to draw: the capped classes, named,
and clicks and selections in real class indices."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt

from app.gui.confusion_view import ConfusionView


def test_a_capped_view_names_its_classes_and_maps_clicks_back(qtbot):
    view = ConfusionView()
    qtbot.addWidget(view)
    view.resize(500, 400)
    classes = [f"class {i}" for i in range(10_000)]
    acc = [i / 10_000 for i in range(10_000)]
    index = [7, 1234, 9999]
    view.set_data(classes, [[5, 1, 0], [0, 3, 2], [1, 0, 4]], acc, "Confusion matrix", index)
    view.show()
    qtbot.waitExposed(view)
    view.grab()  # paints: the grid is known from the last paint
    assert "the 3 classes with the most mistakes, of 10,000" in view._title
    assert view._classes == ["class 7", "class 1234", "class 9999"]
    assert view.per_class_accuracy() == [acc[7], acc[1234], acc[9999]]
    centre = view.cell_center(1234, 9999)
    assert centre is not None and view.cell_center(8, 9) is None
    with qtbot.waitSignal(view.cell_clicked) as clicked:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(int(centre.x()), int(centre.y())))
    assert clicked.args == [1234, 9999]
    view.set_selected((1234, 9999))
    assert view._selected == (1, 2)
    view.set_selected((5, 6))  # not drawn
    assert view._selected is None
