"""`train`: one run of the core Trainer with a progress bar on stderr; with `--nproc N`
or under torchrun, one process of a distributed run (rank 0 reports, see launch.py)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from app.cli.launch import (
    EXIT_INTERRUPTED,
    is_main_process,
    launch_local,
    rank_prefix,
    stop_on_signals,
)
from app.cli.output import EXIT_FAILED, EXIT_OK, ProgressBar, _err, _json_line
from app.core.formatting import format_duration

Emit = Callable[[dict], None]


def _emitter(args: argparse.Namespace, report: bool = True) -> Emit:
    """`train --json`: one JSON object a line on stdout ("epoch", "finished", "error"
    events) for scripts; the human lines stay on stderr. A no-op without --json, and on
    the ranks of a distributed run other than 0."""
    if not getattr(args, "json", False) or not report:
        return lambda obj: None
    return lambda obj: print(_json_line(obj), flush=True)


def _fail(msg: str, emit: Emit) -> int:
    """Reports an error on stderr (and as a JSON "error" event); the exit code."""
    _err(msg)
    emit({"event": "error", "error": msg})
    return EXIT_FAILED


def _data_request(args: argparse.Namespace):
    from app.core.datarequest import DataRequest

    return DataRequest(args.dataset, args.data_dir, getattr(args, "download", False), args.size, args.channels)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from app.core import distributed
    from app.core.config import TrainingError
    from app.core.data import DataError
    from app.core.modelcard import ModelFileError
    from app.core.resources import user_models_dir
    from app.core.training import Trainer

    worker = distributed.launched_by_torchrun()
    emit = _emitter(args, is_main_process())
    if args.nproc != 1 and (args.init or args.replay or args.replay_dir):
        return _fail("--nproc does not go with --init (a fine-tune is short: one process)", emit)
    if args.start_from and args.init:
        return _fail("--start-from and --init are two ways to start from a model: choose one", emit)
    if args.init or args.replay or args.replay_dir:
        return _finetune(args, emit)
    try:
        config = train_config(args)
        if args.nproc < 1:
            raise TrainingError(f"--nproc must be at least 1, not {args.nproc}")
        if config.teachers and (args.nproc > 1 or worker):
            raise TrainingError("--teacher runs in one process (no --nproc, no torchrun)")
        if args.nproc > 1 and not worker:  # bad settings are reported once, before the launch
            return launch_local(args.argv, args.nproc, config.threads)
        if config.threads:  # process-wide: set by the process's owner, never by the trainer
            torch.set_num_threads(config.threads)
        request = _data_request(args)
        data = request.load("train")
        test = None
        if args.eval_test:
            test = request.load("test", data.spec, data.classes)
        out = Path(args.out) if args.out else user_models_dir() / f"{Path(args.dataset).name}-{config.arch}.safetensors"
        if is_main_process():
            for s in data.skipped[:20]:
                print(f"skipped {s}", file=sys.stderr)
        kwargs = dict(
            out=out, checkpoint=args.checkpoint, resume=args.resume, test_data=test, start_from=args.start_from,
            command=" ".join(["python -m app"] + [shlex.quote(a) for a in args.argv]),
        )  # fmt: skip
        if worker:
            ctx = distributed.init_from_env(config.device)
            trainer: Trainer = distributed.DistributedTrainer(ctx, config, data, sync_bn=args.sync_bn, **kwargs)
            if ctx.is_main:
                print(f"{ctx.world_size} processes ({ctx.backend}), global batch {config.batch_size}", file=sys.stderr)
        elif config.teachers:
            from app.core.teachers import TaughtTrainer

            trainer = TaughtTrainer(config, data, **kwargs)
        else:
            trainer = Trainer(config, data, **kwargs)
    except (DataError, TrainingError, ModelFileError, ValueError) as e:
        distributed.shutdown()
        return _fail(rank_prefix() + str(e), emit)

    if not worker:
        return _drive(trainer, config, emit=emit)
    # A torchrun process: Ctrl-C (which torchrun forwards) stops every rank at the same
    # step; rank 0 alone reports.
    signalled = stop_on_signals(trainer.cancel)
    try:
        return _drive(trainer, config, is_main_process(), signalled, emit=emit)
    finally:
        distributed.shutdown()


def train_config(args: argparse.Namespace):
    """The TrainConfig of `train ARGS` (the recipe's defaults, then the flags), validated.

    Raises:
        TrainingError: a setting is out of range.
    """
    from app.core.config import with_overrides
    from app.core.recipes import default_config

    config = default_config(
        Path(args.dataset).name,
        recipe=None if args.recipe == "auto" else args.recipe, taught=bool(args.teacher),
        arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        device=args.device, seed=args.seed, val_fraction=args.val_split,
        precision=args.precision, limit=args.limit, threads=args.threads,
        outlier_exposure=args.outlier_exposure, split_seed=args.split_seed,
        keep_last=args.keep_last, teachers=tuple(args.teacher) if args.teacher else None,
    )  # fmt: skip
    if args.no_augment:
        config = with_overrides(config, augment=False)
    config.validate()
    return config


def _finetune(args: argparse.Namespace, emit: Emit) -> int:
    """`train --init MODEL --dataset DIR [--replay ...]`: a short fine-tune."""
    from app.core.config import TrainingError
    from app.core.data import DataError
    from app.core.finetune import build_finetuner
    from app.core.modelio import ModelFileError
    from app.core.resources import user_models_dir

    if not args.init:
        return _fail("--replay and --replay-dir go with --init MODEL (a fine-tune)", emit)
    if args.dataset in ("mnist", "fashion-mnist") or not Path(args.dataset).is_dir():
        return _fail(f"{args.dataset}: --init needs --dataset DIR, a folder with one subfolder per class", emit)
    if args.resume:
        return _fail("--resume does not go with --init: start the fine-tune again (it is short)", emit)
    out = Path(args.out) if args.out else user_models_dir() / f"{Path(args.init).stem}-{Path(args.dataset).name}.safetensors"
    try:
        trainer = build_finetuner(
            args.init, args.dataset, args.replay, args.replay_dir, out=out,
            command=" ".join(["python -m app"] + [shlex.quote(a) for a in args.argv]),
            arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            device=args.device, seed=args.seed, val_fraction=args.val_split,
            precision=args.precision, threads=args.threads,
            augment=False if args.no_augment else None,
        )  # fmt: skip
        if trainer.config.threads:
            import torch

            torch.set_num_threads(trainer.config.threads)
    except (DataError, TrainingError, ModelFileError, ValueError) as e:
        return _fail(str(e), emit)
    for s in trainer.personal_train.skipped[:20]:
        print(f"skipped {s}", file=sys.stderr)
    print(
        f"fine-tuning {trainer.base_card.name} on {len(trainer.personal_train)} examples "
        f"({len(trainer.held_out)} held out to judge it)"
        + (f", new classes: {', '.join(trainer.classes[len(trainer.base_card.classes):])}"
           if len(trainer.classes) > len(trainer.base_card.classes) else "")
        + (f", replaying {trainer.replay.name}" if trainer.replay is not None else ", no replay"),
        file=sys.stderr,
    )  # fmt: skip
    return _drive(trainer, trainer.config, emit=emit)


def _drive(
    trainer, config, report: bool = True, signalled: Callable[[], bool] = lambda: False,
    emit: Emit = lambda obj: None,
) -> int:  # fmt: skip
    """Runs a trainer with a progress bar; prints the outcome (`report` False: only
    errors, for the ranks of a distributed run other than 0), and `emit`s the epochs and
    the outcome as JSON events. `signalled()`: the run was stopped by a signal (exit
    code 130)."""
    from app.core.config import TrainingError
    from app.core.data import DataError
    from app.core.events import EpochEvent, FinishedEvent, StateEvent, StepEvent, TrainState
    from app.core.finetune import Comparison
    from app.core.modelio import ModelFileError

    bar = ProgressBar(sys.stderr if report else open(os.devnull, "w"))
    last_epoch_line = ""
    try:
        for ev in trainer.run():
            if not report:
                continue
            if isinstance(ev, StepEvent):
                frac = (ev.global_step + 1) / ev.total_steps
                bar.update(
                    frac,
                    f"epoch {ev.epoch + 1}/{config.epochs} loss {ev.loss:.3f} lr {ev.lr:.3g} "
                    f"{ev.images_per_s:,.0f} img/s ETA {format_duration(ev.eta_s)}{last_epoch_line}",
                )
            elif isinstance(ev, EpochEvent):
                val = f" val acc {ev.val_acc:.2%}" if ev.val_acc is not None else ""
                last_epoch_line = f" | last: train acc {ev.train_acc:.2%}{val}"
                bar.update(
                    (ev.epoch + 1) / ev.epochs,
                    f"epoch {ev.epoch + 1}/{ev.epochs} done in {format_duration(ev.elapsed_s)}: "
                    f"train loss {ev.train_loss:.3f} acc {ev.train_acc:.2%}{val}{' *' if ev.best else ''}",
                    force=True,
                )
                if bar.tty:
                    bar.done()
                emit({
                    "event": "epoch", "epoch": ev.epoch + 1, "epochs": ev.epochs,
                    "train_loss": ev.train_loss, "train_acc": ev.train_acc,
                    "val_loss": ev.val_loss, "val_acc": ev.val_acc, "best": ev.best,
                    "images_per_s": ev.images_per_s, "elapsed_s": ev.elapsed_s, "eta_s": ev.eta_s,
                })  # fmt: skip
            elif isinstance(ev, StateEvent) and ev.state is TrainState.RUNNING and trainer.precision_note:
                print(f"precision {trainer.precision_note}", file=sys.stderr)  # measured or set, and why
            elif isinstance(ev, StateEvent) and ev.state in (TrainState.PROBLEM, TrainState.DEVICE):
                print(ev.message, file=sys.stderr)
                emit({"event": "problem" if ev.state is TrainState.PROBLEM else "device", "message": ev.message})
                if ev.state is TrainState.PROBLEM:
                    trainer.cancel()
            elif isinstance(ev, FinishedEvent):
                bar.done()
                print(
                    f"{ev.status.value}: {ev.epochs_done} epochs in {format_duration(ev.elapsed_s)}"
                    + (f", best val acc {ev.best_val_acc:.2%} (epoch {ev.best_epoch + 1})" if ev.best_val_acc is not None and ev.best_epoch is not None else ""),
                    file=sys.stderr,
                )
                if trainer.test_metrics:
                    print(
                        f"test accuracy: {trainer.test_metrics['test_accuracy']:.2%} "
                        f"({trainer.test_metrics['test_split']})",
                        file=sys.stderr,
                    )
                if ev.temperature is not None:
                    tm = trainer.test_metrics
                    test_ece = f"; test ECE {tm['test_ece']:.2%}" if "test_ece" in tm else ""
                    print(f"calibrated on the validation split: temperature {ev.temperature:.4f}, "
                          f"validation ECE {ev.val_ece_uncalibrated:.2%} -> {ev.val_ece:.2%}{test_ece}",
                          file=sys.stderr)  # fmt: skip
                if ev.comparison:
                    for line in Comparison(**ev.comparison).lines():
                        print(f"before -> after: {line}", file=sys.stderr)
                if ev.model_path:
                    print(f"model saved: {ev.model_path}", file=sys.stderr)
                emit(_finished_json(ev, trainer.test_metrics))
    except KeyboardInterrupt:
        bar.done()
        if report:
            _interrupted(trainer)
            emit({"event": "interrupted", "checkpoint": str(trainer.checkpoint) if trainer.checkpoint else None})
        return EXIT_INTERRUPTED
    except (TrainingError, ModelFileError, DataError) as e:
        bar.done()
        return _fail(rank_prefix() + str(e), emit)
    if signalled():
        if report:
            _interrupted(trainer)
            emit({"event": "interrupted", "checkpoint": str(trainer.checkpoint) if trainer.checkpoint else None})
        return EXIT_INTERRUPTED
    return EXIT_OK


def _finished_json(ev, test_metrics: dict | None) -> dict:
    """The "finished" JSON event: how the run ended, the saved model, its calibration,
    test metrics (with --eval-test) and a fine-tune's before/after comparison."""
    best = ev.best_epoch + 1 if ev.best_epoch is not None else None
    return {
        "event": "finished", "status": ev.status.value, "epochs_done": ev.epochs_done,
        "best_val_acc": ev.best_val_acc, "best_epoch": best, "elapsed_s": ev.elapsed_s,
        "model": ev.model_path, "temperature": ev.temperature, "val_ece": ev.val_ece,
        "val_ece_uncalibrated": ev.val_ece_uncalibrated,
        "test": dict(test_metrics) if test_metrics else None, "comparison": ev.comparison,
    }  # fmt: skip


def _interrupted(trainer) -> None:
    _err("interrupted; the last finished epoch's checkpoint is kept"
         + (f" ({trainer.checkpoint}); continue with --resume" if trainer.checkpoint else ""))
