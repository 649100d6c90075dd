"""`calibrate`: a saved model's temperature and "not sure" rule, fitted on the validation
split of its own training data and written into its card."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli.output import EXIT_FAILED, EXIT_OK, _err, _json_line, _say


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

