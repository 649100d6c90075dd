"""DataRequest: the CLI and the Train tab describe data the same way and get the same
dataset (a folder's images prepared with one input spec)."""

from __future__ import annotations

from app.cli import _data_request, build_parser
from app.core.data import folder_spec
from app.core.datarequest import DataRequest
from app.core.models import MNIST_SPEC
from tests.core.test_data import make_class_folder


def test_a_folder_request_prepares_images_with_the_folder_spec(tmp_path):
    make_class_folder(tmp_path / "ds" / "train", {"0": 2, "1": 2})
    make_class_folder(tmp_path / "ds" / "test", {"0": 1, "1": 1})
    request = DataRequest(str(tmp_path / "ds"), image_size=32, channels=1)
    assert not request.builtin and request.spec() == folder_spec(32, 1)
    train = request.load()
    assert train.spec == folder_spec(32, 1) and train.images.shape == (4, 1, 32, 32)
    test = request.load("test", MNIST_SPEC, train.classes)  # e.g. a model's own spec
    assert test.images.shape == (2, 1, 28, 28) and test.classes == ["0", "1"]


def test_the_cli_builds_the_same_request_as_the_form(tmp_path):
    args = build_parser().parse_args(["train", "--dataset", str(tmp_path), "--size", "48", "--channels", "1"])
    assert _data_request(args) == DataRequest(str(tmp_path), None, False, 48, 1)
    assert DataRequest("mnist").spec() is None  # builtins bring their own
