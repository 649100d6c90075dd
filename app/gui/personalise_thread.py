"""The trainer thread for "Personalise": a fine-tune of a model on my examples."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject

from app.core.config import TrainConfig
from app.core.data import DataError
from app.core.datarequest import DataRequest
from app.core.finetune import FineTuner, finetune_config
from app.core.modelio import read_card
from app.core.personal import load_examples
from app.core.replay import load_replay, replay_for
from app.gui.trainer_thread import TrainerThread, gui_training_threads


class PersonaliseThread(TrainerThread):
    """`TrainerThread` running a `FineTuner`: the base model `init`, the examples under
    `examples`, replaying the base's own training data (from its card) when it is a
    built-in dataset. Progress, pause, stop and the signals are those of any run; the
    final `training_finished` event carries the before/after comparison.

    Raises (on construction, in the calling thread):
        ModelFileError: the base model's card cannot be read.
    """

    def __init__(self, init: str | Path, examples: str | Path, out: str | Path, parent: QObject | None = None, **overrides) -> None:  # fmt: skip
        self.init = Path(init)
        self.examples = Path(examples)
        self.card = read_card(self.init)
        self.replay = replay_for(self.card)
        overrides.setdefault("threads", gui_training_threads())
        config = finetune_config(self.card, **overrides)
        super().__init__(config, DataRequest(str(self.examples)), out, parent=parent)

    def _load(self):
        t0 = time.perf_counter()
        self.message.emit("loading my examples" + (f" and {self.replay} to replay" if self.replay else "") + " ...")
        personal = load_examples(self.examples, self.card.input)
        try:
            train, test = load_replay(self.replay, None, self.card)
        except DataError as e:  # e.g. a packaged app without the MNIST files
            self.message.emit(f"nothing to replay ({e}); learning from my examples alone")
            train = test = None
        self.message.emit(f"loaded {len(personal)} examples in {time.perf_counter() - t0:.1f} s")
        return personal, train, test

    def _make_trainer(self, loaded, config: TrainConfig) -> FineTuner:
        personal, train, test = loaded
        tuner = FineTuner(config, self.init, personal, train, test, out=self.out, command="resnet-studio GUI: Personalise")
        self.data_ready.emit(list(tuner.classes))
        return tuner
