"""My examples on disk: classes, adding, listing, deleting, loading as a dataset."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.data import DataError
from app.core.personal import (
    PersonalError,
    PersonalStore,
    check_class_name,
    held_out_mask,
    load_examples,
    personal_dir,
)
from app.core.strokes import Drawing, prepared_pixels
from tests.helpers.digits import digit_strokes


def drawing(digit: str) -> Drawing:
    return Drawing.of(digit_strokes()[digit])


def test_the_store_lives_in_the_user_data_folder(isolated_user_dirs):
    store = PersonalStore()
    assert store.root == personal_dir() and str(isolated_user_dirs) in str(store.root)
    assert store.classes() == [] and store.examples() == []


def test_add_writes_png_and_strokes_in_a_class_folder(tmp_path):
    store = PersonalStore(tmp_path)
    ex = store.add("7", drawing("7"))
    assert ex.png.parent == tmp_path / "7" and ex.png.suffix == ".png"
    assert ex.strokes is not None and ex.strokes.is_file()
    assert np.array_equal(ex.pixels(), prepared_pixels(drawing("7")))
    assert ex.drawing() == drawing("7") or len(ex.drawing().strokes) == len(drawing("7").strokes)
    assert not [p for p in (tmp_path / "7").iterdir() if p.name.startswith(".")]  # no temp files


def test_listing_is_by_class_digits_first_oldest_first(tmp_path):
    store = PersonalStore(tmp_path)
    store.new_class("plus")
    first = store.add("1", drawing("1"))
    second = store.add("1", drawing("1"))
    store.add("10", drawing("0"))
    store.add("2", drawing("2"))
    assert store.classes() == ["1", "2", "10", "plus"]
    assert [e.png for e in store.examples("1")] == [first.png, second.png]
    assert store.counts() == {"1": 2, "2": 1, "10": 1, "plus": 0}


def test_delete_an_example_and_a_class(tmp_path):
    store = PersonalStore(tmp_path)
    a = store.add("3", drawing("3"))
    store.add("3", drawing("3"))
    store.delete(a)
    assert not a.png.exists() and not a.strokes.exists()
    assert store.counts() == {"3": 1}
    store.delete(a)  # twice is fine
    assert store.delete_class("3") == 1 and store.classes() == []


def test_new_class_names_are_checked(tmp_path):
    store = PersonalStore(tmp_path)
    assert store.new_class("  + ") == "+"
    assert store.new_class("Plus") == "Plus" and store.new_class("plus") == "Plus"
    for bad, message in [("", "needs a name"), ("a/b", "cannot contain"), ("..", "dot"), ("CON", "reserved"),
                         ("x" * 41, "at most"), ("a\tb", "control")]:  # fmt: skip
        with pytest.raises(PersonalError, match=message):
            check_class_name(bad)


def test_blank_drawings_are_not_added(tmp_path):
    with pytest.raises(PersonalError, match="blank"):
        PersonalStore(tmp_path).add("1", Drawing.of([[(0.5, 0.5)]], 0.01))
    with pytest.raises(PersonalError, match="draw something"):
        PersonalStore(tmp_path).add("1")


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    import app.core.fileio as fileio

    store = PersonalStore(tmp_path)
    store.new_class("5")

    def full_disk(path, write):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio, "_stage", full_disk)
    with pytest.raises(PersonalError, match="No space left"):
        store.add("5", drawing("5"))
    assert list((tmp_path / "5").iterdir()) == []


def test_examples_load_as_a_dataset_with_their_pixels(tmp_path):
    store = PersonalStore(tmp_path)
    for d in ("4", "4", "+"):
        store.add(d, drawing("1" if d == "+" else d))
    (tmp_path / "+" / "junk.png").write_text("not an image")
    store.new_class("empty")
    data = load_examples(tmp_path)
    assert data.classes == ["4", "+"] and data.labels.tolist() == [0, 0, 1]
    assert data.images.shape == (3, 1, 28, 28)
    assert np.array_equal(data.images[0, 0].numpy(), store.examples("4")[0].pixels())
    assert len(data.skipped) == 1 and "junk.png" in data.skipped[0]
    with pytest.raises(DataError, match="no examples"):
        load_examples(tmp_path / "empty")


def test_examples_rerender_from_strokes_for_another_input_size(tmp_path):
    from app.core.models import InputSpec

    PersonalStore(tmp_path).add("2", drawing("2"))
    data = load_examples(tmp_path, InputSpec(1, 32, (0.5,), (0.25,), "digit"))
    assert data.images.shape == (1, 1, 32, 32) and int(data.images.max()) == 255


def test_a_fifth_of_each_class_is_held_out_stably():
    paths = [f"/x/{c}/{i:013d}-abc.png" for c in range(3) for i in range(12)]
    labels = [c for c in range(3) for _ in range(12)]
    held = held_out_mask(paths, labels)
    assert [sum(h for h, lab in zip(held, labels) if lab == c) for c in range(3)] == [2, 2, 2]
    # adding an example to class 0 keeps the old choice, or moves one example at most
    more = held_out_mask([*paths, "/x/0/9999999999999-new.png"], [*labels, 0])
    assert sum(a != b for a, b in zip(held, more)) <= 1
    assert held_out_mask(paths[:4], labels[:4]) == [False] * 4  # too few to spare one
