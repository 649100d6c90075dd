"""`evaluate`, `export` and `info`: what a model file is and how well it does."""

from __future__ import annotations

import argparse
from pathlib import Path

from app import __version__
from app.cli.output import EXIT_FAILED, EXIT_OK, NOT_A_NUMBER, _err, _json_line, _say
from app.cli.train import _data_request


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
    if args.reliability and result.calibration is not None:
        from app.core.calibration import save_reliability_diagram

        title = f"{predictor.card.name or Path(args.model).stem}, {data.name} {args.split}"
        try:
            save_reliability_diagram(result.calibration, args.reliability, title)
        except OSError as e:
            _err(f"cannot write the reliability diagram {args.reliability}: {e.strerror or e}")
            return EXIT_FAILED
    elif args.reliability:
        _err(f"{args.model}: {NOT_A_NUMBER.replace('for this image', 'on this data')}")
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


def cmd_export(args: argparse.Namespace) -> int:
    from app.core.export import ExportError, export_model
    from app.core.modelio import ModelFileError

    try:
        done = export_model(args.model, args.out, args.format)
    except (ModelFileError, ExportError) as e:
        _err(str(e))
        return EXIT_FAILED
    _say(f"exported {done.path} (checked: {done.parity})")
    return EXIT_OK


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
