"""`resnet-serving up` and `down`: from nothing to a load-tested, autoscaling deployment and back.

up: cluster (create or reuse) → the model (gke: exported, uploaded to a bucket the model
server may read through Workload Identity; or --model-uri) → both charts with pyhelm3 → first
replica AVAILABLE → the Locust chart headless with the shape → timeline.csv, events.csv,
timeline.png and summary.md → optionally `down`. On --provider rehearsal it is the rehearsal.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

from tooling.errors import UserError
from tooling.gke.bucket import READER_ROLE
from tooling.loadgen.load_shapes import SHAPE_VARIABLES, Shape, shape_from_spec
from tooling.runs.locust_load import LOAD_RELEASE, LocustSettings
from tooling.runs.story import APP_NAMESPACE, RELEASE, SERVER_NAME

MODEL_NAME = "image_classifier"


def shape_seconds(shape: Shape, limit: float = 6 * 3600) -> float:
    """How long the shape runs (the first second with no users left)."""
    t = 0.0
    while t < limit and shape.users_at(t) is not None:
        t += 1.0
    return t


def shape_environment(args: argparse.Namespace) -> dict[str, str]:
    environment = {key: os.environ[key] for key in SHAPE_VARIABLES if key in os.environ}
    if args.step_seconds:
        environment["STEP_SECONDS"] = str(args.step_seconds)
    return environment


def locust_settings(args: argparse.Namespace) -> LocustSettings:
    environment = shape_environment(args)
    shape = shape_from_spec(args.shape, {**os.environ, **environment})
    run_time = f"{math.ceil(shape_seconds(shape)) + 60}s"
    if args.shape.startswith("file:"):
        csv_text = Path(args.shape.removeprefix("file:")).read_text()
        return LocustSettings("file", environment, csv_text, args.workers, run_time)
    return LocustSettings(args.shape, environment, "", args.workers, run_time)


def bucket_name(args: argparse.Namespace) -> str:
    return args.bucket or f"{args.project}-resnet-serving"


def gke_model_uri(args: argparse.Namespace) -> str:
    return args.model_uri or f"gs://{bucket_name(args)}/{MODEL_NAME}"


def region_of(location: str) -> str:
    parts = location.split("-")
    return "-".join(parts[:2]) if len(parts) > 2 else location


def dry_run_lines(args: argparse.Namespace) -> list[str]:
    """What `up` would create, exactly, without calling anything."""
    from google.cloud import container_v1

    from tooling.commands.cluster import gke_spec
    from tooling.gke.bucket import ksa_principal
    from tooling.gke.cluster_request import cluster_request

    if args.provider != "gke":
        raise ValueError("--dry-run describes GKE resources; use it with --provider gke")
    spec = gke_spec(args)
    request = container_v1.Cluster.to_json(
        cluster_request(spec),
        use_integers_for_enums=False,
        always_print_fields_with_no_presence=False,
    )
    lines = [
        f"1. GKE cluster {spec.path} (ClusterManager.CreateCluster; reused if it exists"
        f"{'; regional, so node counts are per zone' if spec.regional else ''}):",
        *("   " + line for line in request.splitlines()),
        f"2. kubeconfig context {spec.kube_context} in {args.kubeconfig} "
        "(user: gke-gcloud-auth-plugin)",
    ]
    if args.model_uri:
        lines.append(f"3. model: --model-uri {args.model_uri} (nothing uploaded)")
    else:
        member = ksa_principal("PROJECT_NUMBER", spec.project, APP_NAMESPACE, SERVER_NAME)
        lines += [
            f"3. bucket gs://{bucket_name(args)} in {region_of(spec.location)} "
            "(uniform bucket-level access; reused if it exists)",
            f"   objects {gke_model_uri(args)}/1/… (ResNet101 SavedModel, about 176 MB, "
            f"{args.weights} weights)",
            f"   IAM binding {READER_ROLE} → {member}",
        ]
    settings = locust_settings(args)
    values = ", ".join(str(path) for path in args.values) if args.values else "ci/lab-values.yaml"
    lines += [
        f"4. helm release {RELEASE} (charts/resnet-serving) in namespace {APP_NAMESPACE} "
        f"(Pod Security restricted), values {values}, model.source.uri={gke_model_uri(args)}",
        f"5. helm release {LOAD_RELEASE} (charts/locust): "
        + json.dumps(settings.values(f"http://{SERVER_NAME}:8501"), sort_keys=True),
        f"6. run directory {args.report}: timeline.csv, events.csv, timeline.png, summary.md",
    ]
    if args.down:
        lines.append("7. then `down`: both releases, the cluster, and the model's objects")
    return lines


def prepare_gke_model(args: argparse.Namespace, say: Callable[[str], None]) -> str:
    """Exports the model (once), uploads it, lets the model server's KSA read it."""
    if args.model_uri:
        return args.model_uri
    from google.cloud import storage

    from tooling.gke.bucket import ensure_bucket, grant_read, ksa_principal
    from tooling.model.export import export_model
    from tooling.model.package import upload

    model_dir = args.report.parent / "model" / MODEL_NAME
    if not (model_dir / "1" / "saved_model.pb").is_file():
        say(f"up: exporting ResNet101 ({args.weights} weights) …")
        export_model(model_dir.parent, MODEL_NAME, 1, args.weights)
    client = storage.Client(project=args.project)
    bucket = ensure_bucket(client, bucket_name(args), region_of(args.location), say)
    upload(model_dir, gke_model_uri(args), progress=say, client=client)
    bucket.reload()
    member = ksa_principal(bucket.project_number, args.project, APP_NAMESPACE, SERVER_NAME)
    grant_read(bucket, member, say)
    return gke_model_uri(args)


def run_up(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    from tooling.commands.cluster import create
    from tooling.runs.existing_cluster import existing_cluster_target
    from tooling.runs.story import LAB_VALUES, StorySpec, run_story

    values = tuple(args.values) if args.values else (LAB_VALUES,)
    settings = locust_settings(args)  # a bad shape fails before anything is created
    if args.provider == "kind" and not args.model_uri:
        raise UserError(
            "kind pods cannot read your gs:// bucket: give --model-uri https://…/model.tar.gz "
            "(`resnet-serving model package` makes the tarball; serve it where the cluster "
            "can reach it)"
        )
    kubeconfig = create(args)
    model_uri = prepare_gke_model(args, say) if args.provider == "gke" else args.model_uri
    target = existing_cluster_target(kubeconfig, args.provider, model_uri, settings, say)
    result = run_story(target, StorySpec(args.report, values), say)
    print(result.timeline)
    if args.down:
        args.yes = True  # asked for with --down
        run_down(args, say, confirm=lambda question: True)
    return 0 if result.scaled_in else 1


def run_down(
    args: argparse.Namespace, say: Callable[[str], None], confirm: Callable[[str], bool]
) -> int:
    from tooling import releases
    from tooling.commands.cluster import cluster_name, delete

    name = cluster_name(args)
    what = [f"the {args.provider} cluster {name}"]
    if args.provider == "gke" and not args.model_uri:
        what.append(f"the objects under {gke_model_uri(args)}")
    if not (args.yes or confirm(f"Delete {' and '.join(what)}? [y/N] ")):
        say("down: nothing deleted")
        return 1
    if args.kubeconfig.is_file():
        for release in (LOAD_RELEASE, RELEASE):
            try:
                releases.uninstall(args.kubeconfig, release, APP_NAMESPACE, wait=True)
            except Exception as error:  # an unreachable cluster is deleted anyway
                say(f"down: could not uninstall {release} ({str(error).strip()[:200]})")
    delete(args)
    if args.provider == "gke" and not args.model_uri:
        from google.cloud import storage

        from tooling.gke.bucket import delete_prefix

        bucket = storage.Client(project=args.project).bucket(bucket_name(args))
        delete_prefix(bucket, MODEL_NAME, say)
    say(f"down: ✓ done at {time.strftime('%H:%M:%S')}")
    return 0
