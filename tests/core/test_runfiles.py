"""The files a run or a save leaves when it is killed, and two runs on one output: a
complete model pair always loads, stale temp files go, an unwritable --out is said
before training, and a second run on the same --out is refused."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
import torch

from app.core import fileio, modelio
from app.core.config import TrainConfig, TrainingError
from app.core.data import MNIST_CLASSES, Dataset
from app.core.modelio import card_path, load_model, pending_card_path, read_card
from app.core.models import MNIST_SPEC
from app.core.runlock import RunLock, lock_path
from app.core.training import Trainer
from tests.helpers.models import write_model

TINY = TrainConfig(arch="resnet-mnist-small", epochs=1, batch_size=16, seed=0, device="cpu", threads=1)


@pytest.fixture(scope="module")
def data() -> Dataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 28, 28), generator=g, dtype=torch.uint8)
    return Dataset(images, torch.arange(40) % 10, list(MNIST_CLASSES), MNIST_SPEC, "random", "tests")


class Killed(BaseException):
    """Stands for the process dying: nothing after it runs (not even `except OSError`)."""


def _kill_at_replace(monkeypatch, n: int) -> None:
    """The process dies at the n-th os.replace of a save (1: pending card, 2: weights,
    3: card into place)."""
    calls = {"n": 0}
    real = os.replace

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == n:
            raise Killed
        return real(src, dst)

    monkeypatch.setattr(fileio.os, "replace", replace)
    monkeypatch.setattr(modelio.os, "replace", replace)


def _weights(path) -> dict:
    return {k: v.clone() for k, v in load_model(path)[0].state_dict().items()}


@pytest.mark.parametrize("dies_at", [1, 2, 3])
def test_a_save_killed_at_any_rename_leaves_a_complete_pair_that_loads(tmp_path, monkeypatch, dies_at):
    path = write_model(tmp_path / "m.safetensors", seed=1)
    old = _weights(path)
    _kill_at_replace(monkeypatch, dies_at)
    with pytest.raises(Killed):
        write_model(tmp_path / "m.safetensors", seed=2)
    monkeypatch.undo()
    new_weights_in_place = dies_at == 3  # died after the weights' rename
    model, card = load_model(path)  # never "weights do not match the card"
    got = model.state_dict()
    want = _weights(write_model(tmp_path / "ref.safetensors", seed=2)) if new_weights_in_place else old
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert card.pair == modelio._weights_pair(path)
    if new_weights_in_place:  # the reader finished the interrupted save
        assert not pending_card_path(path).exists()
        assert read_card(path).pair == card.pair


def test_a_first_save_killed_before_its_card_moved_still_loads(tmp_path, monkeypatch):
    _kill_at_replace(monkeypatch, 3)
    with pytest.raises(Killed):
        write_model(tmp_path / "m.safetensors", seed=2)
    monkeypatch.undo()
    assert not card_path(tmp_path / "m.safetensors").exists()
    load_model(tmp_path / "m.safetensors")
    assert card_path(tmp_path / "m.safetensors").exists()


def test_weights_and_card_of_two_different_saves_are_named_as_such(tmp_path):
    a = write_model(tmp_path / "a.safetensors", seed=1)
    b = write_model(tmp_path / "b.safetensors", seed=2)
    card_path(a).write_bytes(card_path(b).read_bytes())
    with pytest.raises(modelio.ModelFileError, match="come from different saves"):
        load_model(a)


def test_the_next_run_removes_stale_temp_files_of_our_naming_only(tmp_path, data):
    out = tmp_path / "m.safetensors"
    stale = [tmp_path / ".m.ckpt.ab12cd_3.tmp", tmp_path / ".m.safetensors.k2j4h5g6.tmp",
             tmp_path / ".m.json.zzzzzzzz.tmp"]  # fmt: skip
    foreign = [tmp_path / ".m.ckpt.notours.tmp", tmp_path / "notes.tmp", tmp_path / ".other.ckpt.ab12cd34.tmp"]
    for p in stale + foreign:
        p.write_bytes(b"half a checkpoint")
    list(Trainer(TINY, data, out=out).run())
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in foreign)
    assert out.exists() and out.with_suffix(".ckpt").exists()
    assert not lock_path(out).exists()


def test_an_out_inside_a_regular_file_is_refused_before_training(tmp_path, data):
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrainingError, match=r"model file .*m\.safetensors: .*/file is a file, not a folder"):
        Trainer(TINY, data, out=tmp_path / "file" / "m.safetensors")


def test_an_out_in_a_read_only_folder_is_refused_before_training(tmp_path, data, monkeypatch):
    def read_only(*args, **kwargs):  # tests run as root, which writes anywhere
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(fileio.tempfile, "mkstemp", read_only)
    with pytest.raises(TrainingError, match=r"cannot write model file .*Read-only file system"):
        Trainer(TINY, data, out=tmp_path / "m.safetensors")


def test_a_second_run_on_the_same_out_is_refused_clearly(tmp_path, data):
    out = tmp_path / "m.safetensors"
    first = Trainer(TINY, data, out=out).run()
    next(first)  # running, holding the lock
    with pytest.raises(TrainingError, match=rf"another training run \(process {os.getpid()}\)"):
        list(Trainer(TINY, data, out=out).run())
    list(first)  # the first run finishes and saves
    load_model(out)
    list(Trainer(TINY, data, out=out).run())  # and the next one may go


def test_a_lock_of_another_live_process_is_refused(tmp_path):
    out = tmp_path / "m.safetensors"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom app.core.runlock import RunLock\n"
         f"lock = RunLock({str(out)!r}); lock.acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match=rf"process {holder.pid}\)"):
            RunLock(out).acquire()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(out):  # the dead holder's lock file is taken over
        assert lock_path(out).read_text().split()[0] == str(os.getpid())


def test_a_stale_lock_file_of_a_dead_pid_is_taken_over(tmp_path, data):
    out = tmp_path / "m.safetensors"
    lock_path(out).write_text("999999999 " + os.uname().nodename + "\n")
    list(Trainer(TINY, data, out=out).run())
    load_model(out)
    assert not lock_path(out).exists()
