"""run.json: what a run was (cluster, node autoscaler, scaling signal, values files), beside its
timeline, so a report never hides which node autoscaler and which signal made the numbers."""

from __future__ import annotations

import json
from pathlib import Path

RUN_INFO = "run.json"
NODE_AUTOSCALER = "node_autoscaler"
SCALING_SIGNAL = "scaling_signal"  # what the pods scale on, and what carries it


def write_run_info(run_dir: Path, info: dict[str, object]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RUN_INFO
    path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def read_run_info(run_dir: Path) -> dict[str, object]:
    """The run's run.json, or {} for a run made before it existed (or by `watch`)."""
    path = run_dir / RUN_INFO
    return json.loads(path.read_text()) if path.is_file() else {}


def node_autoscaler_text(info: dict[str, object]) -> str:
    """How the summary names the node autoscaler ("none" where the cluster has none)."""
    if NODE_AUTOSCALER not in info:
        return "not recorded"
    return str(info[NODE_AUTOSCALER] or "none")


def scaling_signal_text(info: dict[str, object]) -> str:
    """How the summary names the scaling signal ("not recorded" for runs made before it was)."""
    return str(info.get(SCALING_SIGNAL) or "not recorded")
