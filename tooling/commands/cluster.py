"""`resnet-serving cluster create|credentials|delete`: a cluster to deploy into.

--provider rehearsal (default): the local rehearsal cluster (real control plane, kwok nodes,
  the real Cluster Autoscaler where it is built).
--provider node: the rehearsal's control plane and one real node on this machine (as root):
  containerd, the kubelet, kube-proxy, CoreDNS; pods run as containers from local images
  (`make setup-node`); no node autoscaler.
--provider kind: a kind cluster in Docker, with metrics-server.
--provider gke: a GKE cluster with an autoscaled node pool and Workload Identity, through the
  google-cloud-container client (credentials: `gcloud auth application-default login`).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from tooling.console import say
from tooling.providers import PROVIDERS, ClusterSpec, provider
from tooling.providers.base import DEFAULT_KUBECONFIG
from tooling.rehearsal.node_autoscalers import CHOICES as NODE_AUTOSCALERS
from tooling.rehearsal.profiles import AUTOSCALING_PROFILES, PROFILES, profile


def add_pool_arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The node pool and how it scales (GKE's and the rehearsal's); returns the flags added."""
    pool = parser.add_argument_group("node pool")
    return [
        pool.add_argument("--min-nodes", type=int, default=1, help="node pool minimum (1)"),
        pool.add_argument("--max-nodes", type=int, default=3, help="node pool maximum (3)"),
        pool.add_argument(
            "--autoscaling-profile",
            choices=AUTOSCALING_PROFILES,
            default="balanced",
            help="GKE's cluster autoscaling profile (balanced, GKE's default)",
        ),
    ]


def add_rehearsal_arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The rehearsal's timings and node autoscaler; returns the flags added."""
    rehearsal = parser.add_argument_group("rehearsal")
    return [
        rehearsal.add_argument(
            "--profile",
            choices=list(PROFILES),
            default="fast",
            help="timings: fast (default) or lab",
        ),
        rehearsal.add_argument(
            "--node-autoscaler",
            choices=NODE_AUTOSCALERS,
            default="auto",
            help="the real cluster-autoscaler (auto: where `make setup-rehearsal` built it) or "
            "the stand-in",
        ),
    ]


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that name and shape a cluster (shared with `up` and `down`)."""
    parser.add_argument("--provider", choices=PROVIDERS, default="rehearsal")
    parser.add_argument(
        "--name",
        default="",
        help="cluster name (resnet-rehearsal, resnet-node, resnet-kind, resnet-serving)",
    )
    parser.add_argument(
        "--kubeconfig", type=Path, default=DEFAULT_KUBECONFIG, help="the kubeconfig file to write"
    )
    add_pool_arguments(parser)
    add_rehearsal_arguments(parser)
    gke = parser.add_argument_group("gke")
    gke.add_argument("--project", default="", help="Google Cloud project id")
    gke.add_argument("--location", default="", help="zone (us-central1-a) or region")
    gke.add_argument("--machine-type", default="e2-standard-4")


def cluster_spec(args: argparse.Namespace) -> ClusterSpec:
    """The --provider's own cluster spec from the flags (its default name unless --name)."""
    named = {"name": args.name} if args.name else {}
    if args.provider == "rehearsal":
        return rehearsal_spec(args, args.kubeconfig, **named)
    if args.provider == "node":
        from tooling.node.node_cluster import NodeClusterSpec

        return NodeClusterSpec(args.kubeconfig, profile=profile(args.profile), **named)
    if args.provider == "kind":
        from tooling.providers.kind import KindClusterSpec

        return KindClusterSpec(args.kubeconfig, **named)
    from tooling.gke.cluster_request import GkeClusterSpec
    from tooling.providers.gke import GkeProviderSpec

    request = GkeClusterSpec(
        project=args.project,
        location=args.location,
        machine_type=args.machine_type,
        min_nodes=args.min_nodes,
        max_nodes=args.max_nodes,
        autoscaling_profile=args.autoscaling_profile,
        **named,
    )
    return GkeProviderSpec(
        request,
        args.kubeconfig,
        bucket=getattr(args, "bucket", ""),
        weights=getattr(args, "weights", "random"),
    )


def rehearsal_spec(args: argparse.Namespace, kubeconfig: Path, **named: str) -> ClusterSpec:
    """The rehearsal's cluster spec from its flags (`cluster`, `up`, `rehearse`)."""
    from tooling.rehearsal.node_autoscalers import NodePool
    from tooling.rehearsal.rehearse import RehearsalClusterSpec

    return RehearsalClusterSpec(
        kubeconfig,
        profile=profile(args.profile),
        pool=NodePool(args.min_nodes, args.max_nodes, args.autoscaling_profile),
        node_autoscaler=args.node_autoscaler,
        **named,
    )


def owned_rehearsal(
    provider_name: str, name: str, run_dir: Path | None = None
) -> contextlib.AbstractContextManager[None]:
    """A rehearsal or node cluster held by this process for the verb's life (a run under a
    name in use is refused before anything starts; tooling.rehearsal.cluster.owned); other
    providers' clusters are not held."""
    if provider_name not in ("rehearsal", "node"):
        return contextlib.nullcontext()
    from tooling.node.node_cluster import NodeClusterSpec
    from tooling.rehearsal.cluster import owned
    from tooling.rehearsal.rehearse import RehearsalClusterSpec

    default = RehearsalClusterSpec.name if provider_name == "rehearsal" else NodeClusterSpec.name
    return owned(name or default, run_dir)


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("cluster", help="create or delete a cluster", description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create (or reuse) a cluster")
    credentials = actions.add_parser("credentials", help="write the kubeconfig of a cluster")
    delete = actions.add_parser("delete", help="delete a cluster and wait")
    for action in (create, credentials, delete):
        add_cluster_arguments(action)
    create.set_defaults(handler=handle_create)
    credentials.set_defaults(handler=handle_credentials)
    delete.set_defaults(handler=handle_delete)


def handle_create(args: argparse.Namespace) -> int:
    cluster = cluster_spec(args)
    with owned_rehearsal(args.provider, args.name):
        kubeconfig = provider(args.provider).create(cluster, say)
    say(f"cluster: export KUBECONFIG={kubeconfig.resolve()}")
    say(f"cluster: delete it with `resnet-serving cluster delete --provider {args.provider} ...`")
    print(kubeconfig.resolve())
    return 0


def handle_credentials(args: argparse.Namespace) -> int:
    print(provider(args.provider).credentials(cluster_spec(args), say).resolve())
    return 0


def handle_delete(args: argparse.Namespace) -> int:
    cluster = cluster_spec(args)
    with owned_rehearsal(args.provider, args.name):  # not from under a running run
        provider(args.provider).delete(cluster, say)
    return 0
