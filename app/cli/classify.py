"""`classify` and `explain`: image files in, answers or heat maps out."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from app.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, NOT_A_NUMBER, _err, _json_line, _say


def describe(result) -> str:
    """One prediction in words: "7 (99.6%; then 1 0.2%, 2 0.1%)", "not sure: 4 or 9?
    (4 52.0%, 9 41.3%)" or "this does not look like a digit (closest: 0 71.4%)"."""
    tops = ", ".join(f"{lbl} {p:.1%}" for lbl, p in result.top_k[1:3])
    if result.verdict == "unsure":
        pair = ", ".join(f"{lbl} {p:.1%}" for lbl, p in result.top_k[:2])
        return f"{result.verdict_message} ({pair})"
    if result.verdict == "foreign":
        return f"{result.verdict_message} (closest: {result.label} {result.confidence:.1%})"
    return f"{result.label} ({result.confidence:.1%}" + (f"; then {tops})" if tops else ")")


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
            _say(f"{path}: {describe(result)}")
    if count == 0:
        _err("no image files found in " + ", ".join(args.paths))
        return EXIT_FAILED
    return EXIT_FAILED if failed else EXIT_OK


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
