"""Command line: `python -m app [classify|explain|train|evaluate|export|info]`; no arguments
starts the GUI. Heavy modules (torch) are imported inside the commands so `--help` and
the GUI start fast."""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

from app import __version__
from app.core.formatting import format_duration

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


class ProgressBar:
    """A one-line progress bar on stderr (plain lines when not a terminal)."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last = 0.0

    def update(self, frac: float, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.2 if self.tty else 10.0):
            return
        self._last = now
        width = 24
        filled = int(round(frac * width))
        line = f"[{'#' * filled}{'.' * (width - filled)}] {frac * 100:5.1f}% {text}"
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# --- classify ----------------------------------------------------------------------------


def _printable(text: str, encoding: str) -> str:
    """`text` in a form `encoding` can always take. File names whose bytes are not valid
    UTF-8 reach Python as surrogate escapes, which a strict UTF-8 stdout refuses with a
    traceback: they are shown as \\xNN, and anything else the terminal cannot show
    as \\uNNNN."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    text = raw.decode("utf-8", "backslashreplace")
    try:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        return text


def _say(text: str) -> None:
    """Prints one line on stdout, whatever its encoding (see `_printable`)."""
    print(_printable(text, getattr(sys.stdout, "encoding", None) or "utf-8"), flush=True)


def _json_line(obj: dict) -> str:
    """One JSON line. NaN and infinity are not JSON: refused here as a last guard
    (`cmd_classify` reports such results as errors before they get this far)."""
    return json.dumps(obj, allow_nan=False)


NOT_A_NUMBER = (
    "the model's output is not a number (NaN or infinity) for this image; the model "
    "file may be damaged"
)


def cmd_classify(args: argparse.Namespace) -> int:
    from app.core.images import ImageLoadError, iter_image_files
    from app.core.modelio import ModelFileError
    from app.core.predictor import Predictor

    try:
        predictor = Predictor.load(args.model)
    except ModelFileError as e:
        _err(str(e))
        return EXIT_FAILED
    failed = 0
    count = 0
    for path, result in predictor.predict_paths(iter_image_files(args.paths), top_k=args.top_k):
        count += 1
        problem = None
        if isinstance(result, ImageLoadError):
            problem = result.problem
        elif not result.blank and not all(math.isfinite(p) for p in result.probabilities):
            problem = NOT_A_NUMBER
        if problem is not None:
            failed += 1
            if args.json:
                print(_json_line({"path": str(path), "error": problem}), flush=True)
            else:
                _say(f"{path}: error: {problem}")
            continue
        if args.json:
            print(_json_line({"path": str(path), **result.to_json()}), flush=True)
        elif result.blank:
            _say(f"{path}: {result.message}")
        else:
            tops = ", ".join(f"{lbl} {p:.1%}" for lbl, p in result.top_k[1:3])
            _say(f"{path}: {result.label} ({result.confidence:.1%}; then {tops})")
    if count == 0:
        _err("no image files found in " + ", ".join(args.paths))
        return EXIT_FAILED
    return EXIT_FAILED if failed else EXIT_OK


# --- explain -----------------------------------------------------------------------------


def cmd_explain(args: argparse.Namespace) -> int:
    from app.core.explain_files import explain_files
    from app.core.images import ImageLoadError, iter_image_files
    from app.core.modelio import ModelFileError
    from app.core.predictor import Predictor

    try:
        predictor = Predictor.load(args.model)
    except ModelFileError as e:
        _err(str(e))
        return EXIT_FAILED
    target = None
    if args.class_label is not None:
        if args.class_label not in predictor.classes:
            _err(f"class {args.class_label!r} is not one of the model's: {', '.join(predictor.classes)}")
            return EXIT_USAGE
        target = predictor.classes.index(args.class_label)
    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        failed = count = 0
        for r in explain_files(predictor, iter_image_files(args.paths), args.out, target, args.method):
            count += 1
            if isinstance(r, ImageLoadError):
                failed += 1
                print(f"{r.path}: error: {r.problem}", flush=True)
            elif r.skipped:
                print(f"{r.path}: {r.skipped}", flush=True)
            else:
                e = r.explanation
                label = predictor.classes[e.predicted]
                print(f"{r.path}: {label} ({e.probabilities[e.predicted]:.1%}) -> {r.out}", flush=True)
    except OSError as e:
        _err(f"cannot write to the output folder {args.out}: {e.strerror or e}")
        return EXIT_FAILED
    if count == 0:
        _err("no image files found in " + ", ".join(args.paths))
        return EXIT_FAILED
    return EXIT_FAILED if failed else EXIT_OK


# --- train -------------------------------------------------------------------------------


def _data_request(args: argparse.Namespace):
    from app.core.datarequest import DataRequest

    return DataRequest(args.dataset, args.data_dir, getattr(args, "download", False), args.size, args.channels)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from app.core.config import TrainingError, with_overrides
    from app.core.data import DataError
    from app.core.events import EpochEvent, FinishedEvent, StateEvent, StepEvent, TrainState
    from app.core.modelio import ModelFileError
    from app.core.recipes import default_config
    from app.core.resources import user_models_dir
    from app.core.training import Trainer

    try:
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
        if config.threads:  # process-wide: set by the process's owner, never by the trainer
            torch.set_num_threads(config.threads)
        request = _data_request(args)
        data = request.load("train")
        test = None
        if args.eval_test:
            test = request.load("test", data.spec, data.classes)
        out = Path(args.out) if args.out else user_models_dir() / f"{Path(args.dataset).name}-{config.arch}.safetensors"
        for s in data.skipped[:20]:
            print(f"skipped {s}", file=sys.stderr)
        trainer = Trainer(
            config, data, out=out, checkpoint=args.checkpoint, resume=args.resume,
            command=" ".join(["python -m app"] + [shlex.quote(a) for a in args.argv]),
            test_data=test,
        )  # fmt: skip
    except (DataError, TrainingError, ValueError) as e:
        _err(str(e))
        return EXIT_FAILED

    bar = ProgressBar()
    last_epoch_line = ""
    try:
        for ev in trainer.run():
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
        bar.done()
        _err("interrupted; the last finished epoch's checkpoint is kept"
             + (f" ({trainer.checkpoint}); continue with --resume" if trainer.checkpoint else ""))
        return 130
    except (TrainingError, ModelFileError, DataError) as e:
        bar.done()
        _err(str(e))
        return EXIT_FAILED
    return EXIT_OK


# --- evaluate ----------------------------------------------------------------------------


def cmd_evaluate(args: argparse.Namespace) -> int:
    from app.core.data import DataError
    from app.core.evaluation import evaluate_model
    from app.core.modelio import ModelFileError
    from app.core.predictor import Predictor

    try:
        predictor = Predictor.load(args.model)
        data = _data_request(args).load(args.split, predictor.card.input, predictor.classes)
        if data.classes != predictor.classes:
            raise DataError(f"dataset classes {data.classes} differ from the model's {predictor.classes}")
        result = evaluate_model(predictor, data, through_preprocess=args.through_preprocess)
    except (ModelFileError, DataError) as e:
        _err(str(e))
        return EXIT_FAILED
    if args.json:
        try:
            print(_json_line(result.to_json()))
        except ValueError:
            _err(f"{args.model}: {NOT_A_NUMBER.replace('for this image', 'on this data')}")
            return EXIT_FAILED
    else:
        _say(result.report())
    return EXIT_OK


# --- calibrate ---------------------------------------------------------------------------


def cmd_calibrate(args: argparse.Namespace) -> int:
    from app.core.data import BUILTIN, DataError
    from app.core.datarequest import DataRequest
    from app.core.modelio import ModelFileError, card_path, read_card, weights_path
    from app.core.recalibration import recalibrate_file

    try:
        card = read_card(args.model)
        dataset = args.dataset or card.dataset.split(" (")[0]
        if dataset not in BUILTIN and not Path(dataset).is_dir():
            raise DataError(
                f"cannot tell which data {args.model} was trained on (its card says {card.dataset!r}); "
                "pass --dataset mnist, fashion-mnist or the image folder"
            )
        request = DataRequest(dataset, args.data_dir, args.download, card.input.size, card.input.channels)
        data = request.load("train", card.input, card.classes)
        test = request.load("test", card.input, card.classes) if args.eval_test else None
        new, result = recalibrate_file(args.model, data, test)
    except (ModelFileError, DataError) as e:
        _err(str(e))
        return EXIT_FAILED
    if args.json:
        print(_json_line({"model": str(args.model), "temperature": new.temperature, "abstain": new.abstain,
                          "metrics": {k: v for k, v in new.metrics.items() if "ece" in k or "nll" in k}}))  # fmt: skip
        return EXIT_OK
    _say(result.summary())
    if test is not None:
        m = new.metrics
        _say(f"test ECE {m['test_ece_uncalibrated']:.2%} -> {m['test_ece']:.2%}, "
             f"NLL {m['test_nll_uncalibrated']:.4f} -> {m['test_nll']:.4f} (measured only)")  # fmt: skip
    _say(f"card rewritten: {card_path(weights_path(args.model))}")
    return EXIT_OK


# --- export ------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from app.core.export import ExportError, export_model
    from app.core.modelio import ModelFileError

    try:
        out = export_model(args.model, args.out, args.format)
    except (ModelFileError, ExportError) as e:
        _err(str(e))
        return EXIT_FAILED
    _say(f"exported {out}")
    return EXIT_OK


# --- info --------------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    import platform

    import torch
    import torchvision

    from app.core.devices import list_devices
    from app.core.modelio import ModelFileError, read_card
    from app.core.resources import default_model_path, user_models_dir

    print(f"ResNet Studio {__version__}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}")
    try:
        import PySide6

        print(f"PySide6 {PySide6.__version__}")
    except ImportError:
        print("PySide6 not installed (CLI only)")
    print("devices:")
    for d in list_devices():
        print(f"  {d.id:8s} {d.name}" + ("" if d.available else f" - unavailable: {d.reason}"))
    print("models:")
    paths = [default_model_path()]
    if user_models_dir().is_dir():
        paths += sorted(user_models_dir().glob("*.safetensors"))
    for p in paths:
        try:
            _say(f"  {p}: {read_card(p).summary()}")
        except ModelFileError as e:
            _say(f"  {p}: unusable: {e}")
    return EXIT_OK


# --- entry -------------------------------------------------------------------------------


class _TrainHelpFormatter(argparse.HelpFormatter):
    """Lists the architectures (models.ARCHITECTURES) only when help is printed: that
    table lives beside the networks, whose torch import would slow every start by
    seconds."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.dest == "arch":
            from app.core.models import ARCHITECTURES

            return f"{action.help}: {', '.join(ARCHITECTURES)}"
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    # No torch here: the parser runs before the GUI starts and for --help.
    from app.core.config import PRECISIONS
    from app.core.recipes import RECIPES, describe_recipe, recipe_for
    from app.core.resources import default_model_path

    p = argparse.ArgumentParser(prog="resnet-studio", description="See a ResNet classify and learn.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--self-test", action="store_true", help="check this installation and exit")
    sub = p.add_subparsers(dest="command")

    c = sub.add_parser("classify", help="classify image files and folders")
    c.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    c.add_argument("--model", default=str(default_model_path()), help="model .safetensors (default: shipped digit model)")
    c.add_argument("--top-k", type=int, default=3)
    c.add_argument("--json", action="store_true", help="one JSON object per line")
    c.set_defaults(func=cmd_classify)

    xp = sub.add_parser("explain", help="heat maps of what drove each answer, as PNG files")
    xp.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    xp.add_argument("--out", required=True, help="folder for the PNG files (one per image)")
    xp.add_argument("--model", default=str(default_model_path()), help="model .safetensors (default: shipped digit model)")
    xp.add_argument("--class", dest="class_label", default=None, help="explain this class (default: the predicted one)")
    xp.add_argument(
        "--method", default="gradcam", choices=("gradcam", "ig"),
        help="gradcam: regions (Grad-CAM); ig: pixels, integrated gradients, red for and blue against",
    )  # fmt: skip
    xp.set_defaults(func=cmd_explain)

    def data_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, or a folder with one subfolder per class")
        q.add_argument("--data-dir", default=None, help="folder with the IDX files (default: searched)")
        q.add_argument("--download", action="store_true", help="download the dataset with torchvision (needs internet)")
        q.add_argument("--size", type=int, default=64, help="image size for folder datasets")
        q.add_argument("--channels", type=int, default=3, choices=(1, 3), help="channels for folder datasets")

    t = sub.add_parser("train", help="train a model", formatter_class=_TrainHelpFormatter)
    data_args(t)
    t.add_argument("--arch", default=None, help="architecture (default: the recipe's)")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N, mps")
    t.add_argument("--precision", default=None, choices=PRECISIONS)
    t.add_argument("--val-split", type=float, default=None)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    t.add_argument("--threads", type=int, default=None)
    t.add_argument(
        "--recipe", default="auto", choices=("auto", *RECIPES),
        help="default settings and augmentation: " + " or ".join(describe_recipe(r) for r in RECIPES)
        + f"; auto: {recipe_for('mnist')} for mnist, {recipe_for('')} otherwise. "
        "--arch/--epochs/--batch-size/--lr override it",
    )  # fmt: skip
    t.add_argument("--no-augment", action="store_true")
    t.add_argument("--out", default=None, help="model file to write (.safetensors)")
    t.add_argument("--checkpoint", default=None, help="checkpoint file (default: OUT with .ckpt)")
    t.add_argument("--resume", default=None, help="continue from this checkpoint")
    t.add_argument("--eval-test", action="store_true", help="after training, report accuracy on the test split in the card")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="accuracy and per-class accuracy of a model")
    data_args(e)
    e.add_argument("--model", default=str(default_model_path()))
    e.add_argument("--split", default="test", choices=("train", "test"))
    e.add_argument("--through-preprocess", action="store_true", help="pass every image through the app's preprocessing first")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    cb = sub.add_parser(
        "calibrate", help="fit a model's temperature and 'not sure' rule on its validation split",
        description="Fits the temperature (calibrated confidence) and the 'not sure' / 'does not look "
        "like' rule of a saved model on the validation split of its own training data (the seeded "
        "split its training run made; never the test set) and rewrites its card. The weights are "
        "not changed.",
    )  # fmt: skip
    data_args(cb)
    cb.set_defaults(dataset=None)
    cb.add_argument("--model", default=str(default_model_path()))
    cb.add_argument("--eval-test", action="store_true", help="also record ECE and NLL on the test split (measured only)")
    cb.add_argument("--json", action="store_true")
    cb.set_defaults(func=cmd_calibrate)

    x = sub.add_parser("export", help="export a model to ONNX or TorchScript")
    x.add_argument("--model", default=str(default_model_path()))
    x.add_argument("--format", default="onnx", choices=("onnx", "torchscript"))
    x.add_argument("--out", required=True)
    x.set_defaults(func=cmd_export)

    i = sub.add_parser("info", help="versions, devices and models")
    i.set_defaults(func=cmd_info)
    return p


def run_gui() -> int:
    try:
        from app.gui.app import main as gui_main
    except ImportError as e:
        _err(f"the GUI is not available ({e}); the CLI works: python -m app --help")
        return EXIT_FAILED
    return gui_main()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv)  # the card records this command, whoever called main()
    if args.self_test:
        from app.selftest import run_self_test

        return run_self_test()
    if args.command is None:
        return run_gui()
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os._exit(EXIT_OK)


if __name__ == "__main__":
    sys.exit(main())
