"""`resnet-serving cluster create|delete --provider rehearsal`: the local rehearsal cluster's
control plane with its node pool at min size (GKE and kind arrive with issue 5)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROVIDERS = ("rehearsal",)


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("cluster", help="create or delete a cluster", description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="start a cluster")
    delete = actions.add_parser("delete", help="stop a cluster and remove its files")
    for action in (create, delete):
        action.add_argument("--provider", choices=PROVIDERS, default="rehearsal")
        action.add_argument("--name", default="resnet-rehearsal")
    create.add_argument("--profile", default="fast", help="fast or lab controller timings")
    create.add_argument("--min-nodes", type=int, default=1)
    create.add_argument("--workdir", type=Path, default=Path("runs/cluster"))
    create.set_defaults(handler=handle_create)
    delete.set_defaults(handler=handle_delete)


def handle_create(args: argparse.Namespace) -> int:
    from kubernetes import client, config

    from tooling.rehearsal.cluster import create_cluster, delete_cluster, node_manifest
    from tooling.rehearsal.profiles import profile

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        cluster = create_cluster(args.name, args.workdir, profile(args.profile), say)
        core = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
        for index in range(1, args.min_nodes + 1):
            core.create_node(node_manifest(f"pool-{index}", "pool"))
    except BaseException:  # Ctrl-C or a failure: leave no process or port behind
        delete_cluster(args.name)
        raise
    say(
        f"cluster: ✓ {args.name} with {args.min_nodes} e2-standard-4 node(s); "
        f"export KUBECONFIG={cluster.kubeconfig.resolve()}"
    )
    say(f"cluster: delete it with `resnet-serving cluster delete --name {args.name}`")
    print(cluster.kubeconfig.resolve())
    return 0


def handle_delete(args: argparse.Namespace) -> int:
    from tooling.rehearsal.cluster import delete_cluster

    delete_cluster(args.name)
    print(f"cluster: ✓ {args.name} deleted", file=sys.stderr)
    return 0
