"""What data a run or an evaluation loads: one description shared by the CLI and the GUI,
so both build datasets (and a folder's input spec) the same way."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.data import BUILTIN, Dataset, folder_spec, load_dataset
from app.core.models import InputSpec


@dataclass(frozen=True)
class DataRequest:
    """`mnist`, `fashion-mnist` or an image folder (one subfolder per class)."""

    dataset: str
    data_dir: str | None = None  # builtin datasets: folder with the IDX files; None = auto
    download: bool = False  # builtin datasets: fetch with torchvision when not found
    image_size: int = 64  # image folders: side length the images are prepared to
    channels: int = 3  # image folders: 1 = grayscale, 3 = RGB

    @property
    def builtin(self) -> bool:
        return self.dataset in BUILTIN

    def spec(self) -> InputSpec | None:
        """The input spec a new model gets from this data (None: the builtin's own)."""
        return None if self.builtin else folder_spec(self.image_size, self.channels)

    def load(
        self, split: str = "train", spec: InputSpec | None = None, classes: list[str] | None = None
    ) -> Dataset:
        """Loads `split`; `spec`/`classes` (e.g. a model's) override this request's own.

        Raises:
            DataError: the data cannot be found or read (the message says which file).
        """
        return load_dataset(
            self.dataset, self.data_dir or None, split, spec or self.spec(), classes, self.download
        )
