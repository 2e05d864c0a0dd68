"""`resnet-serving calibrate`: CPU-seconds per request of the real ResNet101 forward pass on
this machine, written where the rehearsal's load model reads it."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tooling import paths
from tooling.console import import_tensorflow, say
from tooling.errors import UserError
from tooling.model.package import version_dirs


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "calibrate", help="measure CPU-seconds per prediction", description=__doc__
    )
    parser.add_argument(
        "--model", type=Path, help="DIR/<name> of an exported model (default: export one)"
    )
    parser.add_argument("--requests", type=int, default=20, help="requests to time (20)")
    parser.add_argument(
        "--threads", type=int, default=0, help="TF intra-op threads (0 = all cores)"
    )
    parser.add_argument(
        "--out", type=Path, help="where to write it (default: the package's calibration.json)"
    )
    parser.set_defaults(handler=handle)


def check(args: argparse.Namespace) -> None:
    """The flags, checked before TensorFlow is imported."""
    if args.requests < 1:
        raise UserError(f"--requests {args.requests}: give 1 or more")
    if args.threads < 0:
        raise UserError(f"--threads {args.threads}: give 0 (all cores) or more")
    if args.model is not None:
        version_dirs(args.model)
    if args.out is not None:
        if args.out.is_dir():
            raise UserError(
                f"--out {args.out} is a folder; give the path of the JSON file to write"
            )
        paths.check_writable_folder("--out", args.out.parent)


def handle(args: argparse.Namespace) -> int:
    from tooling import calibration
    from tooling.model.export import export_model

    check(args)
    import_tensorflow()
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if model is None:
            say("calibrate: exporting ResNet101 (seeded random weights, ImageNet's compute) …")
            export_model(Path(scratch), weights="random")
            model = Path(scratch) / "image_classifier"
        say(f"calibrate: timing {args.requests} requests at batch 1 and batched …")
        result = calibration.measure(model, requests=args.requests, threads=args.threads)
    out = args.out or calibration.CALIBRATION_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    path = calibration.save(result, out)
    say(
        f"calibrate: ✓ {result.cpu_seconds_per_request:.3f} CPU-s per request at batch 1, "
        f"{result.cpu_seconds_per_image_batched:.3f} per image batched ({result.batch_size}); "
        f"written to {path}"
    )
    return 0
