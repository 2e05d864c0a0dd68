"""`resnet-serving model export|package|upload`: make the ResNet101 SavedModel and ship it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tooling.console import import_tensorflow, say


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("model", help="export, package or upload the ResNet101 model")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    export = actions.add_parser("export", help="export ResNet101 in TF Serving's layout")
    export.add_argument("--out", type=Path, required=True, help="writes OUT/<name>/<version>/")
    export.add_argument(
        "--weights",
        default="imagenet",
        help="imagenet (needs network access), random (seeded; offline), or a weights file path",
    )
    export.add_argument("--name", default="image_classifier", help="model name (image_classifier)")
    export.add_argument("--version", type=int, default=1, help="version directory (1)")
    export.add_argument("--seed", type=int, default=0, help="seed for --weights random (0)")
    export.add_argument("--force", action="store_true", help="replace an existing version")
    export.set_defaults(handler=handle_export)

    package = actions.add_parser("package", help="tar.gz of a model for the chart's https source")
    package.add_argument("model_dir", type=Path, help="DIR/<name> holding version directories")
    package.add_argument("--out", type=Path, required=True, help="the .tar.gz to write")
    package.set_defaults(handler=handle_package)

    upload = actions.add_parser("upload", help="copy a model to gs://BUCKET/PATH")
    upload.add_argument("model_dir", type=Path, help="DIR/<name> holding version directories")
    upload.add_argument("uri", help="gs://BUCKET/PATH (the chart's model.source.uri)")
    upload.set_defaults(handler=handle_upload)


def handle_export(args: argparse.Namespace) -> int:
    from tooling.model.export import check_export, export_model

    check_export(args.out, args.name, args.version, args.weights, args.seed, args.force)
    if args.weights == "random":
        say(
            "model export: using SEEDED RANDOM weights (offline): the server really runs "
            "ResNet101, at full cost, but its classes mean nothing"
        )
    say(f"model export: building ResNet101 ({args.weights} weights) …")
    started = time.perf_counter()
    import_tensorflow()
    version_dir, info = export_model(
        args.out, args.name, args.version, args.weights, args.seed, args.force
    )
    size = sum(p.stat().st_size for p in version_dir.rglob("*") if p.is_file())
    seconds = time.perf_counter() - started
    say(f"model export: ✓ {version_dir} ({size / 1e6:.0f} MB, {seconds:.0f} s)")
    say(f"model export: weights: {info.weights_note}")
    print(version_dir)
    return 0


def handle_package(args: argparse.Namespace) -> int:
    from tooling.model.package import package

    out = package(args.model_dir, args.out)
    say(
        f"model package: ✓ {out} ({out.stat().st_size / 1e6:.0f} MB); "
        "serve it from https and set model.source.uri to its URL"
    )
    return 0


def handle_upload(args: argparse.Namespace) -> int:
    from tooling.model.package import upload

    names = upload(args.model_dir, args.uri, progress=say)
    say(f"model upload: ✓ {len(names)} objects; set model.source.uri={args.uri.rstrip('/')}")
    return 0
