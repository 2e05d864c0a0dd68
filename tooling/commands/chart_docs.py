"""`resnet-serving chart-docs [--check]`: regenerate (or check) the charts' values tables."""

from __future__ import annotations

import argparse

from tooling import chart_docs, paths
from tooling.errors import UserError


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "chart-docs", help="regenerate the values tables in charts/*/README.md"
    )
    parser.add_argument(
        "--check", action="store_true", help="only report READMEs that are out of date"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    stale = []
    for chart in sorted(path.parent for path in paths.CHARTS_DIR.glob("*/Chart.yaml")):
        _, undocumented = chart_docs.value_docs(chart)
        if undocumented:
            raise UserError(
                f"{chart.name}: add a '# --' comment in values.yaml for: {', '.join(undocumented)}"
            )
        readme = chart / "README.md"
        fresh = chart_docs.render_readme(chart)
        if readme.read_text() != fresh:
            stale.append(readme)
            if not args.check:
                readme.write_text(fresh)
                print(f"updated {readme.relative_to(paths.REPO_ROOT)}")
    if args.check and stale:
        names = ", ".join(str(path.relative_to(paths.REPO_ROOT)) for path in stale)
        raise UserError(f"out of date: {names}; run `resnet-serving chart-docs`")
    return 0
