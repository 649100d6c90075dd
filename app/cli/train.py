"""`train`: one run of the core Trainer with a progress bar on stderr; with `--nproc N`
or under torchrun, one process of a distributed run (rank 0 reports, see launch.py)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from app.cli.launch import (
    EXIT_INTERRUPTED,
    is_main_process,
    launch_local,
    rank_prefix,
    stop_on_signals,
)
from app.cli.output import EXIT_FAILED, EXIT_OK, ProgressBar, _err
from app.core.formatting import format_duration


def _data_request(args: argparse.Namespace):
    from app.core.datarequest import DataRequest

    return DataRequest(args.dataset, args.data_dir, getattr(args, "download", False), args.size, args.channels)


def _config(args: argparse.Namespace):
    from app.core.config import with_overrides
    from app.core.recipes import default_config

    config = default_config(
        Path(args.dataset).name,
        recipe=None if args.recipe == "auto" else args.recipe,
        arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        device=args.device, seed=args.seed, val_fraction=args.val_split,
        precision=args.precision, limit=args.limit, threads=args.threads,
    )  # fmt: skip
    if args.no_augment:
        config = with_overrides(config, augment=False)
    config.validate()
    return config


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from app.core import distributed
    from app.core.config import TrainingError
    from app.core.data import DataError
    from app.core.events import (
        EpochEvent,
        FinishedEvent,
        FinishStatus,
        StateEvent,
        StepEvent,
        TrainState,
    )
    from app.core.modelio import ModelFileError
    from app.core.resources import user_models_dir
    from app.core.training import Trainer

    worker = distributed.launched_by_torchrun()
    try:
        config = _config(args)
        if args.nproc < 1:
            raise TrainingError(f"--nproc must be at least 1, not {args.nproc}")
        if args.nproc > 1 and not worker:  # bad settings are reported once, before the launch
            return launch_local(args.argv, args.nproc, config.threads)
    except TrainingError as e:
        _err(str(e))
        return EXIT_FAILED

    main_rank = is_main_process()
    say = (lambda msg: print(msg, file=sys.stderr)) if main_rank else (lambda msg: None)
    try:
        if config.threads:  # process-wide: set by the process's owner, never by the trainer
            torch.set_num_threads(config.threads)
        request = _data_request(args)
        data = request.load("train")
        test = None
        if args.eval_test:
            test = request.load("test", data.spec, data.classes)
        out = Path(args.out) if args.out else user_models_dir() / f"{Path(args.dataset).name}-{config.arch}.safetensors"
        for s in data.skipped[:20]:
            say(f"skipped {s}")
        kwargs = dict(
            out=out, checkpoint=args.checkpoint, resume=args.resume, test_data=test,
            command=" ".join(["python -m app"] + [shlex.quote(a) for a in args.argv]),
        )  # fmt: skip
        if worker:
            ctx = distributed.init_from_env(config.device)
            trainer: Trainer = distributed.DistributedTrainer(ctx, config, data, **kwargs)
            say(f"{ctx.world_size} processes ({ctx.backend}), global batch {config.batch_size}")
        else:
            trainer = Trainer(config, data, **kwargs)
    except (DataError, TrainingError, ValueError) as e:
        _err(rank_prefix() + str(e))
        distributed.shutdown()
        return EXIT_FAILED

    signalled = stop_on_signals(trainer.cancel) if worker else (lambda: False)
    bar = ProgressBar() if main_rank else None
    last_epoch_line = ""
    stopped = False
    try:
        for ev in trainer.run():
            if bar is None:
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
            elif isinstance(ev, StateEvent) and ev.state in (TrainState.PROBLEM, TrainState.DEVICE):
                print(ev.message, file=sys.stderr)
                if ev.state is TrainState.PROBLEM:
                    trainer.cancel()
            elif isinstance(ev, FinishedEvent):
                bar.done()
                stopped = ev.status is FinishStatus.STOPPED
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
                if ev.model_path:
                    print(f"model saved: {ev.model_path}", file=sys.stderr)
    except KeyboardInterrupt:
        if bar is not None:
            bar.done()
            _interrupted(trainer)
        return EXIT_INTERRUPTED
    except (TrainingError, ModelFileError, DataError) as e:
        if bar is not None:
            bar.done()
        _err(rank_prefix() + str(e))
        return EXIT_FAILED
    finally:
        distributed.shutdown()
    if signalled() and stopped:
        if bar is not None:
            _interrupted(trainer)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _interrupted(trainer) -> None:
    _err("interrupted; the last finished epoch's checkpoint is kept"
         + (f" ({trainer.checkpoint}); continue with --resume" if trainer.checkpoint else ""))
