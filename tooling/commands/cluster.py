"""`resnet-serving cluster create|credentials|delete`: a cluster to deploy into.

--provider rehearsal (default): the local rehearsal cluster (real control plane, kwok nodes).
--provider kind: a kind cluster in Docker, with metrics-server.
--provider gke: a GKE cluster with an autoscaled node pool and Workload Identity, through the
  google-cloud-container client (credentials: `gcloud auth application-default login`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tooling.gke.cluster_request import GkeClusterSpec
    from tooling.gke.clusters import GkeClusters

PROVIDERS = ("rehearsal", "kind", "gke")
DEFAULT_KUBECONFIG = Path("runs/cluster/kubeconfig")


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that name a cluster (shared with `up` and `down`)."""
    parser.add_argument("--provider", choices=PROVIDERS, default="rehearsal")
    parser.add_argument(
        "--name", help="cluster name (resnet-rehearsal, resnet-kind, resnet-serving)"
    )
    gke = parser.add_argument_group("gke")
    gke.add_argument("--project", default="", help="Google Cloud project id")
    gke.add_argument("--location", default="", help="zone (us-central1-a) or region")
    gke.add_argument("--machine-type", default="e2-standard-4")
    pool = parser.add_argument_group("node pool (gke and rehearsal)")
    pool.add_argument("--min-nodes", type=int, default=1, help="node pool minimum (1)")
    pool.add_argument("--max-nodes", type=int, default=3, help="node pool maximum (3)")
    add_node_autoscaling_arguments(pool)
    parser.add_argument(
        "--kubeconfig", type=Path, default=DEFAULT_KUBECONFIG, help="where the kubeconfig goes"
    )


def add_node_autoscaling_arguments(group: argparse._ArgumentGroup) -> None:
    """How nodes are autoscaled: GKE's autoscaling profile; in the rehearsal, by what."""
    from tooling.rehearsal.node_autoscalers import CHOICES
    from tooling.rehearsal.profiles import AUTOSCALING_PROFILES

    group.add_argument(
        "--autoscaling-profile",
        choices=AUTOSCALING_PROFILES,
        default="balanced",
        help="GKE's cluster autoscaling profile (balanced, GKE's default)",
    )
    group.add_argument(
        "--node-autoscaler",
        choices=CHOICES,
        default="auto",
        help="rehearsal: the real cluster-autoscaler (auto: where `make setup-rehearsal` "
        "built it) or the stand-in",
    )


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("cluster", help="create or delete a cluster", description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create (or reuse) a cluster")
    credentials = actions.add_parser("credentials", help="write a kubeconfig entry (gke)")
    delete = actions.add_parser("delete", help="delete a cluster and wait")
    for action in (create, credentials, delete):
        add_cluster_arguments(action)
    create.add_argument("--profile", default="fast", help="rehearsal: fast or lab timings")
    create.set_defaults(handler=handle_create)
    credentials.set_defaults(handler=handle_credentials)
    delete.set_defaults(handler=handle_delete)


def cluster_name(args: argparse.Namespace) -> str:
    default = {"rehearsal": "resnet-rehearsal", "kind": "resnet-kind", "gke": "resnet-serving"}
    return args.name or default[args.provider]


def gke_spec(args: argparse.Namespace) -> GkeClusterSpec:
    from tooling.gke.cluster_request import GkeClusterSpec

    return GkeClusterSpec(
        project=args.project,
        location=args.location,
        name=cluster_name(args),
        machine_type=args.machine_type,
        min_nodes=args.min_nodes,
        max_nodes=args.max_nodes,
        autoscaling_profile=args.autoscaling_profile,
    )


def gke_clusters() -> GkeClusters:
    from tooling.gke.clusters import LOCAL_ENDPOINT_VARIABLE, GkeClusters, make_client

    local = bool(os.environ.get(LOCAL_ENDPOINT_VARIABLE))  # answers at once: poll quickly
    return GkeClusters(make_client(), say=say, poll_seconds=0.2 if local else 10.0)


def create(args: argparse.Namespace) -> Path:
    """Creates (or reuses) the cluster; returns its kubeconfig."""
    name = cluster_name(args)
    if args.provider == "gke":
        from tooling.gke.kubeconfig import write_credentials

        spec = gke_spec(args)
        cluster = gke_clusters().create(spec)
        return write_credentials(args.kubeconfig, spec, cluster)
    if args.provider == "kind":
        from tooling.kind import create_kind_cluster

        return create_kind_cluster(name, args.kubeconfig, say)
    return create_rehearsal(args, name)


def create_rehearsal(args: argparse.Namespace, name: str) -> Path:
    from kubernetes import client, config

    from tooling.rehearsal.cluster import create_cluster, delete_cluster
    from tooling.rehearsal.node_autoscalers import NodePool, node_autoscaler
    from tooling.rehearsal.profiles import profile

    try:
        timings = profile(args.profile)
        pool = NodePool(args.min_nodes, args.max_nodes, args.autoscaling_profile)
        cluster = create_cluster(name, args.kubeconfig.parent, timings, say)
        core = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
        nodes = node_autoscaler(args.node_autoscaler, core, name, cluster.kubeconfig, timings, pool)
        nodes.start()
    except BaseException:  # Ctrl-C or a failure: leave no process or port behind
        delete_cluster(name)
        raise
    say(f"cluster: ✓ {name} with {args.min_nodes} e2-standard-4 node(s); nodes: {nodes.name}")
    return cluster.kubeconfig


def handle_create(args: argparse.Namespace) -> int:
    kubeconfig = create(args)
    say(f"cluster: export KUBECONFIG={kubeconfig.resolve()}")
    say(f"cluster: delete it with `resnet-serving cluster delete --provider {args.provider} ...`")
    print(kubeconfig.resolve())
    return 0


def handle_credentials(args: argparse.Namespace) -> int:
    if args.provider != "gke":
        raise ValueError("credentials is for --provider gke; `cluster create` writes the others")
    from tooling.errors import UserError
    from tooling.gke.kubeconfig import write_credentials

    spec = gke_spec(args)
    cluster = gke_clusters().find(spec)
    if cluster is None:
        raise UserError(
            f"no cluster {spec.name} in {spec.project}/{spec.location}: create it with "
            "`resnet-serving cluster create --provider gke ...`"
        )
    path = write_credentials(args.kubeconfig, spec, cluster)
    say(f"cluster: ✓ context {spec.kube_context} in {path} (uses gke-gcloud-auth-plugin)")
    print(path.resolve())
    return 0


def delete(args: argparse.Namespace) -> None:
    name = cluster_name(args)
    if args.provider == "gke":
        gke_clusters().delete(gke_spec(args))
    elif args.provider == "kind":
        from tooling.kind import delete_kind_cluster

        delete_kind_cluster(name, say)
    else:
        from tooling.rehearsal.cluster import delete_cluster

        delete_cluster(name)
        say(f"cluster: ✓ {name} deleted")


def handle_delete(args: argparse.Namespace) -> int:
    delete(args)
    return 0
