"""A batch's rows as the Classify tab shows them: the classified file (`BatchItem`), its
thumbnail, and the red box where the photo front end found the digit. Plain data and
Pillow drawing, made in the inference thread and read in the GUI thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.core.formatting import percent, sentence

if TYPE_CHECKING:
    from app.core.predictor import Prediction

THUMBNAIL_PX = 40
PREVIEW_PX = 160  # a lone dropped or pasted image: shown beside the model's input
REGION_COLOUR = (230, 30, 30)


@dataclass(frozen=True)
class BatchItem:
    """One classified file (or pasted image) of a batch."""

    path: str
    prediction: Prediction | None = None
    error: str = ""
    thumbnail: np.ndarray | None = None  # small uint8 RGB image for the table
    preview: np.ndarray | None = None  # a bigger one for a lone image (the result panel)

    @property
    def label(self) -> str | None:
        p = self.prediction
        return p.label if p is not None and not p.blank else None

    @property
    def confidence(self) -> float | None:
        p = self.prediction
        return p.confidence if p is not None and not p.blank else None

    @property
    def verdict(self) -> str:
        """"ok", "unsure" or "foreign" (`Prediction.verdict`); "" without a prediction."""
        p = self.prediction
        return p.verdict if p is not None and not p.blank else ""

    @property
    def headline(self) -> str | None:
        """The answer in words: the label, "not sure: 4 or 9?" or "this does not look
        like a digit"; None without a prediction."""
        p = self.prediction
        return p.headline if p is not None and not p.blank else None

    @property
    def note(self) -> str:
        """The error, why there was nothing to classify, or what else was found (several
        digits); empty for a plain good result."""
        if self.error:
            return self.error
        p = self.prediction
        return "" if p is None else (p.message or p.note)

    @property
    def summary(self) -> str:
        """One line for the status bar: the answer in words with its confidence."""
        if self.error:
            return f"Error: {self.error}"
        if self.label is None:
            return self.note or "nothing to classify"
        p = self.prediction
        if p is not None and p.verdict == "unsure":
            top = ", ".join(f"{lbl} {percent(q)}" for lbl, q in p.top_k[:2])
            summary = f"{sentence(p.verdict_message)} ({top})"
        elif p is not None and p.verdict == "foreign":
            summary = f"{sentence(p.verdict_message)} (closest: {self.label}, {percent(self.confidence)})"
        else:
            summary = f"Looks like {self.label} ({percent(self.confidence)} confident)"
        return f"{summary}; {self.note}" if self.note else summary


def make_thumbnail(image, size: int = THUMBNAIL_PX) -> np.ndarray | None:
    """A small RGB uint8 copy of a PIL image or array, transparency on white."""
    from PIL import Image

    try:
        img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        if img.mode not in ("RGB", "L", "RGBA"):
            img = img.convert("RGBA")
        img = img.copy()
        img.thumbnail((size, size))
        if img.mode == "RGBA":
            paper = Image.new("RGB", img.size, (255, 255, 255))
            paper.paste(img, mask=img.getchannel("A"))
            img = paper
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except Exception:  # a thumbnail is decoration; the prediction matters
        return None


def boxed(preview: np.ndarray | None, source_size: tuple[int, int], region, size: int) -> np.ndarray | None:
    """`preview` (a reduced copy of an image `source_size` = (w, h) px) at most `size` px,
    with `region` (x0, y0, x1, y1 in the image's pixels) drawn as a red box: where the
    photo front end found the digit, so that a wrong crop shows at once."""
    from PIL import Image, ImageDraw

    if preview is None:
        return None
    img = Image.fromarray(preview)
    img.thumbnail((size, size))
    if region is not None and source_size[0] > 0:
        f = img.width / source_size[0]
        x0, y0, x1, y1 = (v * f for v in region)
        x1, y1 = max(x1, x0 + 2), max(y1, y0 + 2)
        ImageDraw.Draw(img).rectangle([x0, y0, x1 - 1, y1 - 1], outline=REGION_COLOUR, width=max(1, size // 60))
    return np.asarray(img, dtype=np.uint8).copy()


def source_size(image) -> tuple[int, int]:
    if hasattr(image, "size") and not isinstance(image, np.ndarray):
        return image.size
    shape = np.shape(image)
    return (int(shape[1]), int(shape[0])) if len(shape) >= 2 else (0, 0)
