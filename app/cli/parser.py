"""The argument parser of every command. No torch here: the parser runs before the GUI
starts and for --help."""

from __future__ import annotations

import argparse

from app import __version__
from app.cli.calibrate import cmd_calibrate
from app.cli.classify import cmd_classify, cmd_explain
from app.cli.models import cmd_evaluate, cmd_export, cmd_info
from app.cli.train import cmd_train


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
    t.add_argument(
        "--keep-last", action="store_true", default=None,
        help="save the last epoch's weights, not the best validation epoch's",
    )  # fmt: skip
    t.add_argument(
        "--teacher", action="append", default=None, metavar="MODEL",
        help="distil from this trained model (repeat for an ensemble: their mean logits), with "
        "the distillation settings of recipes.TAUGHT (the last epoch is kept); the teachers must "
        "have held out the same digits (see --split-seed)",
    )  # fmt: skip
    t.add_argument("--split-seed", type=int, default=None, help="the validation split's seed (default: --seed)")
    t.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    t.add_argument("--threads", type=int, default=None)
    t.add_argument(
        "--recipe", default="auto", choices=("auto", *RECIPES),
        help="default settings and augmentation: " + " or ".join(describe_recipe(r) for r in RECIPES)
        + f"; auto: {recipe_for('mnist')} for mnist, {recipe_for('')} otherwise. "
        "--arch/--epochs/--batch-size/--lr override it",
    )  # fmt: skip
    t.add_argument("--no-augment", action="store_true")
    t.add_argument(
        "--outlier-exposure", type=float, default=None, metavar="WEIGHT",
        help="also train on synthetic non-class images with a 'none of these' target, at this loss "
        "weight (e.g. 0.5; default 0 = off): the 'does not look like' rule then catches far more "
        "foreign images, at about twice the training time",
    )  # fmt: skip
    t.add_argument("--out", default=None, help="model file to write (.safetensors)")
    t.add_argument("--checkpoint", default=None, help="checkpoint file (default: OUT with .ckpt)")
    t.add_argument("--resume", default=None, help="continue from this checkpoint")
    t.add_argument("--eval-test", action="store_true", help="after training, report accuracy on the test split in the card")
    t.add_argument(
        "--json", action="store_true",
        help="also print JSON lines on stdout: an 'epoch' event per finished epoch, then 'finished' "
        "(model, calibration, test metrics), 'interrupted' or 'error'",
    )  # fmt: skip
    t.add_argument(
        "--start-from", default=None, metavar="MODEL",
        help="start from this model's weights instead of new ones (same architecture, classes and input) "
        "and train the whole recipe on --dataset: e.g. add --outlier-exposure to a trained model",
    )  # fmt: skip
    t.add_argument(
        "--init", default=None, metavar="MODEL",
        help="fine-tune this model on --dataset (a folder, one subfolder a class: its classes are matched "
        "by name, new ones extend the model); the recipe's defaults are then those of a short fine-tune",
    )  # fmt: skip
    t.add_argument(
        "--replay", default=None, metavar="mnist|fashion-mnist|DIR",
        help="with --init: mix the base model's training data into the run so nothing is forgotten",
    )  # fmt: skip
    t.add_argument("--replay-dir", default=None, metavar="IDX_DIR", help="folder with the replayed IDX files (default: searched)")
    t.add_argument(
        "--nproc", type=int, default=1,
        help="train in N processes on this machine (torchrun's launcher, DDP; same global batch and lr). "
        "For several machines start the same command with torchrun, see the README",
    )  # fmt: skip
    t.add_argument(
        "--sync-bn", action="store_true",
        help="with several processes: batch norm over the global batch (the exact single-process update; "
        "about 2x slower on CPUs). Default: each process's share, as torchvision's references",
    )  # fmt: skip
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="accuracy, per-class accuracy and calibration (ECE, NLL) of a model")
    data_args(e)
    e.add_argument("--model", default=str(default_model_path()))
    e.add_argument("--split", default="test", choices=("train", "test"))
    e.add_argument("--through-preprocess", action="store_true", help="pass every image through the app's preprocessing first")
    e.add_argument("--json", action="store_true")
    e.add_argument("--reliability", metavar="PNG", default=None, help="also write a reliability diagram (PNG) of the probabilities the app shows")
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
