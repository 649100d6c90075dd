"""Where a model input came from in the original image, and mapping maps back onto it.

Every preprocessing pipeline (digit, fit, resize) only crops, pads, scales and pastes,
so the model input is an axis-aligned affine image of the source:
    u = scale_x * x + offset_x,   v = scale_y * y + offset_y
in continuous pixel coordinates (pixel i covers [i, i + 1)), the convention PIL's
resize and transform use. `prepare()` records it in `PreparedImage.placement`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Placement:
    """The affine map from source-image coordinates to model-input coordinates.

    source_size: (width, height) of the image `prepare()` was given.
    scale, offset: (x, y) pairs of the map u = scale * x + offset.
    """

    source_size: tuple[int, int]
    scale: tuple[float, float] = (1.0, 1.0)
    offset: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def identity(cls, width: int, height: int) -> Placement:
        return cls((int(width), int(height)))

    def shifted(self, dx: float, dy: float) -> Placement:
        """Then moved by (dx, dy): a crop at (x0, y0) is shifted(-x0, -y0), a paste at
        (left, top) or a padding of r is shifted(left, top) / shifted(r, r)."""
        return Placement(self.source_size, self.scale, (self.offset[0] + dx, self.offset[1] + dy))

    def scaled(self, fx: float, fy: float) -> Placement:
        """Then resized by (fx, fy) (new width / old width, new height / old height)."""
        return Placement(
            self.source_size,
            (self.scale[0] * fx, self.scale[1] * fy),
            (self.offset[0] * fx, self.offset[1] * fy),
        )

    def to_model(self, x: float, y: float) -> tuple[float, float]:
        """A source point in model-input coordinates."""
        return self.scale[0] * x + self.offset[0], self.scale[1] * y + self.offset[1]

    def to_source(self, u: float, v: float) -> tuple[float, float]:
        """A model-input point in source coordinates."""
        return (u - self.offset[0]) / self.scale[0], (v - self.offset[1]) / self.scale[1]

    def source_box(self, size: int) -> tuple[float, float, float, float]:
        """The model input's square (0..size) in source coordinates: (x0, y0, x1, y1)."""
        x0, y0 = self.to_source(0.0, 0.0)
        x1, y1 = self.to_source(float(size), float(size))
        return x0, y0, x1, y1


def warp_to_source(
    heat: np.ndarray, placement: Placement, out_size: tuple[int, int] | None = None
) -> np.ndarray:
    """A model-input-sized map (H, W) resampled onto the source image (bilinear).

    Args:
        heat: float map at the model-input resolution.
        placement: the prepared image's placement.
        out_size: (width, height) of the result; default the source size. A smaller
            size gives the map for a downscaled copy of the source (for display).

    Returns:
        float32 (out_height, out_width); 0 where the source was not part of the input.
    """
    sw, sh = placement.source_size
    ow, oh = out_size or (sw, sh)
    # output pixel X -> source x = X * sw / ow -> model u = scale * x + offset
    kx, ky = sw / ow, sh / oh
    data = (
        placement.scale[0] * kx, 0.0, placement.offset[0],
        0.0, placement.scale[1] * ky, placement.offset[1],
    )  # fmt: skip
    img = Image.fromarray(np.ascontiguousarray(heat, dtype=np.float32), mode="F")
    out = img.transform((ow, oh), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR, fillcolor=0.0)
    return np.asarray(out, dtype=np.float32)
