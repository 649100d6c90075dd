"""Explaining image files: what `python -m app explain` does for each file, apart from
printing. One PNG per file: the model input and the original image with the map."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from app.core.explain import Explanation, explain_prepared
from app.core.fileio import atomic_write_bytes
from app.core.images import ImageLoadError, load_image
from app.core.overlay import explanation_sheet


@dataclass(frozen=True)
class ExplainedFile:
    """One file's result: `explanation` and the PNG written (`out`), or `skipped` with
    the reason (a blank image, nothing to explain)."""

    path: Path
    explanation: Explanation | None = None
    out: Path | None = None
    skipped: str = ""


def explain_files(
    predictor,
    paths: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    target: int | None = None,
    method: str = "gradcam",
) -> Iterator[ExplainedFile | ImageLoadError]:
    """Explains each file with `predictor` (a Predictor: prepare, model, classes,
    tta_flip) and writes OUT_DIR/STEM-METHOD.png (STEM-METHOD-2.png, ... when two files
    share a name; nothing is overwritten within a run). Unreadable files yield their
    ImageLoadError and the rest go on.

    Raises:
        OSError: a PNG cannot be written (full disk, read-only folder).
    """
    out = Path(out_dir)
    used: set[str] = set()
    for raw in paths:
        path = Path(raw)
        try:
            source = load_image(path)
        except ImageLoadError as e:
            yield e
            continue
        prepared = predictor.prepare(source)
        if prepared.blank:
            yield ExplainedFile(path, skipped=prepared.reason)
            continue
        e = explain_prepared(
            predictor.model, prepared, target, method, tta_flip=predictor.tta_flip, temperature=predictor.temperature
        )
        picture = explanation_sheet(e, prepared.pixels, predictor.classes, source, prepared.placement)
        buf = io.BytesIO()
        picture.save(buf, format="PNG")
        name, n = f"{path.stem}-{method}.png", 1
        while name in used:
            n += 1
            name = f"{path.stem}-{method}-{n}.png"
        used.add(name)
        atomic_write_bytes(out / name, buf.getvalue())
        yield ExplainedFile(path, e, out / name)
