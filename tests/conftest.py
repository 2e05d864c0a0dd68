"""Shared fixtures: the pinned helm binaries, cached chart renders, the exported model and its
server, and one bare rehearsal cluster; and the marks that split the suite into tiers.

Tiers: a test that starts a cluster, a server, Locust or TensorFlow is `slow` (`make
test-fast` leaves it out, `make test` runs everything). Tests are marked here by the fixtures
they use (below), and modules that start such things themselves carry their own marks."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import helm_cli as helm
import pytest

from tooling import paths
from tooling.serving import process

RESNET_CHART = paths.CHARTS_DIR / "resnet-serving"
LOCUST_CHART = paths.CHARTS_DIR / "locust"
CHARTS = (RESNET_CHART, LOCUST_CHART)
HELM_NAMES = helm.HELM_BINARIES


def ci_cases() -> list[tuple[Path, Path]]:
    """(chart, ci values file) for every ci/*-values.yaml of both charts."""
    return [(chart, values) for chart in CHARTS for values in helm.ci_values_files(chart)]


def case_id(case: tuple[Path, Path]) -> str:
    chart, values = case
    return f"{chart.name}:{values.name.removesuffix('-values.yaml')}"


@functools.cache
def render(chart: Path, values: Path | None, helm_name: str = "helm") -> tuple[dict, ...]:
    """Objects `helm template` renders for the chart with one values file (cached per session)."""
    files = [values] if values else []
    return tuple(helm.Helm.pinned(helm_name).template(chart, files))


def deep_merge(base: dict, override: dict) -> dict:
    """`override` laid over `base` the way helm merges values maps."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


SAFE_TO_EVICT_LOCAL_VOLUMES = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes"


def volumes_blocking_scale_down(template: dict) -> set[str]:
    """A pod template's local volumes (disk emptyDir, hostPath) its safe-to-evict-local-volumes
    annotation does not list: each keeps the Cluster Autoscaler from draining the pod's node
    (its rule in pkg/utils/drain)."""
    annotation = template["metadata"].get("annotations", {}).get(SAFE_TO_EVICT_LOCAL_VOLUMES, "")
    listed = set(filter(None, annotation.split(",")))
    local = {
        volume["name"]
        for volume in template["spec"].get("volumes", [])
        if "hostPath" in volume
        or ("emptyDir" in volume and (volume["emptyDir"] or {}).get("medium") != "Memory")
    }
    return local - listed


def objects_of(objects: tuple[dict, ...], kind: str) -> list[dict]:
    return [obj for obj in objects if obj.get("kind") == kind]


def one_of(objects: tuple[dict, ...], kind: str, name_suffix: str = "") -> dict:
    found = [
        obj for obj in objects_of(objects, kind) if obj["metadata"]["name"].endswith(name_suffix)
    ]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, found {len(found)}"
    return found[0]


@pytest.fixture(params=HELM_NAMES)
def helm_name(request: pytest.FixtureRequest) -> str:
    """Each test using this runs with helm v4 (`helm`) and helm v3 (`helm3`)."""
    helm.Helm.pinned(request.param)  # fails with "run `make setup`" when missing
    return request.param


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory) -> Path:
    """ResNet101 with seeded random weights, exported once per session: DIR/image_classifier."""
    from tooling.model.export import export_model

    out = tmp_path_factory.mktemp("model")
    export_model(out, name="image_classifier", version=1, weights="random", seed=0)
    return out / "image_classifier"


@pytest.fixture(scope="session")
def local_server(exported_model, tmp_path_factory) -> Iterator[process.LocalServer]:
    """`resnet-serving serve-local` in its own process, with batching, on free loopback ports."""
    with process.local_server(
        exported_model, tmp_path_factory.mktemp("server"), batching=process.batching_config()
    ) as server:
        yield server


SLOW_FIXTURES = frozenset({"exported_model", "local_server", "shared_cluster", "node_cluster"})
REHEARSAL_FIXTURES = frozenset({"shared_cluster"})
# Session fixtures that live only while the tests using them run: their tests run one after
# another, and each is deleted after its last test (see `pytest_runtest_teardown`).
SHARED_FIXTURES = ("shared_cluster", "node_cluster")
FAST_LIMIT_SECONDS = 10.0  # a test in the fast tier taking longer is named at the end


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks each test by what it uses: the shared cluster makes it `rehearsal`, the node
    cluster `node`; those, `e2e`, the exported model or its server make it `slow`. The tests
    on each shared cluster run one after another, so it lives only while they run."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & REHEARSAL_FIXTURES:
            item.add_marker(pytest.mark.rehearsal)
        if "node_cluster" in used:
            item.add_marker(pytest.mark.node)
        if any(item.iter_markers("node")):  # also a test that asks for it as it runs
            item.add_marker(pytest.mark.slow)
        if (
            used & SLOW_FIXTURES
            or any(item.iter_markers("rehearsal"))
            or any(item.iter_markers("e2e"))
        ):
            item.add_marker(pytest.mark.slow)
    groups = {item: worker_group(item) for item in items}
    for item, group in groups.items():
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    # The longest groups first, each in one block: under xdist they start first, and the fast
    # tests fill the workers at the end; in one process, each shared cluster lives only while
    # its block runs.
    rank = {group: position for position, group in enumerate(GROUP_ORDER)}
    order = {item: position for position, item in enumerate(items)}
    first_of: dict[str, int] = {}
    for item, group in groups.items():
        first_of.setdefault(group or item.nodeid, order[item])

    def position(item: pytest.Item) -> tuple[int, int, int]:
        group = groups[item]
        return (rank.get(group, len(GROUP_ORDER)), first_of[group or item.nodeid], order[item])

    items.sort(key=position)


# Tests that share an expensive session or module fixture run on one xdist worker
# (`--dist loadgroup`): the shared clusters' users, the exported model's, and each slow
# module's. Listed here: the groups that start first, longest first.
GROUP_ORDER = ("node_cluster", "tests/test_autoscaling_e2e.py", "shared_cluster", "model")


def worker_group(item: pytest.Item) -> str | None:
    """The xdist group of a test: the shared cluster or model it uses, else its module if it
    is slow, else none (a fast test runs wherever a worker is free)."""
    for fixture in SHARED_FIXTURES:
        if uses(item, fixture):
            return fixture
    if set(getattr(item, "fixturenames", ())) & {"exported_model", "local_server"}:
        return "model"
    if any(item.iter_markers("slow")):
        return str(item.path.relative_to(item.config.rootpath))
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    """The tests that will run on each shared cluster (after `-m` and `-k` chose)."""
    for fixture, users in _SHARED_USERS.items():
        users.update(item.nodeid for item in session.items if uses(item, fixture))


def uses(item: pytest.Item, fixture: str) -> bool:
    """Does the test use that shared fixture: by name, or (the node cluster) by the `node`
    mark of a test that asks for it as it runs (request.getfixturevalue)?"""
    if fixture in getattr(item, "fixturenames", ()):
        return True
    return fixture == "node_cluster" and any(item.iter_markers("node"))


FAST_TIER_OVERRUNS: list[tuple[str, float]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    slow = "slow" in report.keywords
    if report.when == "call" and report.duration > FAST_LIMIT_SECONDS and not slow:
        FAST_TIER_OVERRUNS.append((report.nodeid, report.duration))


def pytest_terminal_summary(terminalreporter) -> None:
    """Names the unmarked tests that took long, so the fast tier stays fast."""
    if FAST_TIER_OVERRUNS:
        terminalreporter.section(f"fast tier: unmarked tests over {FAST_LIMIT_SECONDS:.0f} s")
        for nodeid, seconds in FAST_TIER_OVERRUNS:
            terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}  (mark it slow?)")


def wait_for_default_service_account(core: object, namespace: str) -> None:
    """Until the controller-manager has made `namespace`'s default ServiceAccount, which pods
    need (one created before it is refused: 403, serviceaccount "default" not found)."""
    from tooling.waiting import wait_for

    wait_for(
        lambda: bool(core.list_namespaced_service_account(namespace).items),
        60,
        f"the default ServiceAccount of {namespace}",
    )


@contextlib.contextmanager
def bare_rehearsal_cluster(
    name: str, folder: Path, namespace: str
) -> Iterator[tuple[Path, object]]:
    """A rehearsal control plane (fast profile, no node yet), once `namespace` (created if it
    is not there, Pod Security restricted) has the default ServiceAccount pods need; deleted
    afterwards. Yields its kubeconfig and an API client."""
    from kubernetes import client

    from tooling.kube import api_client
    from tooling.rehearsal.cluster import create_cluster, delete_cluster
    from tooling.rehearsal.profiles import profile
    from tooling.runs.app_namespace import ensure_app_namespace

    try:
        cluster = create_cluster(name, folder / "kubeconfig", profile("fast"), print)
        api = api_client(cluster.kubeconfig)
        core = client.CoreV1Api(api)
        if namespace != "default":
            ensure_app_namespace(core, namespace)
        wait_for_default_service_account(core, namespace)
        yield cluster.kubeconfig, api
    finally:
        delete_cluster(name)


# Per shared fixture: the node ids of the tests still to use it, and what closes it.
_SHARED_USERS: dict[str, set[str]] = {fixture: set() for fixture in SHARED_FIXTURES}
_SHARED_STACKS = {fixture: contextlib.ExitStack() for fixture in SHARED_FIXTURES}


@pytest.fixture(scope="session")
def shared_cluster(tmp_path_factory) -> Iterator[tuple[Path, object]]:
    """One bare rehearsal control plane (fast profile, no node) for the modules that need only
    an API server, pytest-helm-charts style: each works in its own namespace
    (`namespace_in`) and deletes the nodes it adds. Deleted after the last test using it.
    Yields its kubeconfig and an API client."""
    from tooling.rehearsal.cluster import missing_binaries

    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"rehearsal binaries missing ({', '.join(missing)}): run `make setup-rehearsal`"
        )
    folder = tmp_path_factory.mktemp("shared-cluster")
    name = f"shared-{os.getpid()}"
    stack = _SHARED_STACKS["shared_cluster"]
    yield stack.enter_context(bare_rehearsal_cluster(name, folder, "default"))
    stack.close()


def host_network() -> tuple[str, ...]:
    """What the node's parts change on the host and must put back: its links, iptables rules,
    routes, network namespaces, the cgroups of the node's parent, and the kernel settings
    kube-proxy reads."""
    from tooling.node import kube_proxy

    def output(*command: str) -> str:
        return subprocess.run(command, capture_output=True, text=True).stdout

    links = output("ip", "-o", "link")
    rules = output("iptables-save")
    cgroups = sorted(str(p) for p in Path("/sys/fs/cgroup").glob("*/resnet-serving-node"))
    return (
        "\n".join(line.split(":", 2)[1] for line in links.splitlines()),
        "\n".join(line for line in rules.splitlines() if not line.startswith("#")),
        output("ip", "route"),
        output("ip", "netns", "list"),
        "\n".join(cgroups),
        repr(kube_proxy.read_settings()),
    )


def node_cluster_skip_reason() -> str | None:
    """Why the node cluster cannot start here, or None."""
    from tooling.node.node_cluster import missing_node_parts

    if os.geteuid() != 0:
        return "the node cluster runs containers: run the tests as root (CI does)"
    missing = missing_node_parts()
    if missing:
        return f"the real node's parts missing ({', '.join(missing)}): run `make setup-node`"
    return None


@pytest.fixture(scope="session")
def node_cluster(tmp_path_factory) -> Iterator[object]:
    """One cluster whose pods run as containers (`cluster create --provider node`): the real
    control plane, one real node, the local images, the model store. Deleted after the last
    test using it, which checks that nothing was left behind: no process, mount or folder of
    its own, and the host's network as it was. Yields its NodeClusterSpec."""
    reason = node_cluster_skip_reason()
    if reason:
        pytest.skip(reason)
    from tooling.node.node_cluster import NodeClusterSpec
    from tooling.providers.node import NodeProvider

    spec = NodeClusterSpec(
        tmp_path_factory.mktemp("node-cluster") / "kubeconfig", f"node-{os.getpid()}"
    )
    provider = NodeProvider()
    stack = _SHARED_STACKS["node_cluster"]
    before = host_network()

    def host_network_as_before() -> None:
        after = host_network()
        changed = [f"{b!r} -> {a!r}" for b, a in zip(before, after, strict=True) if a != b]
        assert not changed, f"the node cluster left the host changed: {changed}"

    stack.callback(host_network_as_before)  # after the delete (an ExitStack runs in reverse)
    stack.callback(provider.delete, spec, print)  # raises if anything was left behind
    provider.create(spec, print)
    yield spec
    stack.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield  # the test's own fixtures (a module's namespace among them) are torn down first
    for fixture, users in _SHARED_USERS.items():
        users.discard(item.nodeid)
        if not users:
            _SHARED_STACKS[fixture].close()  # a no-op unless it is up


@contextlib.contextmanager
def namespace_in(api: object, name: str, restricted: bool = True) -> Iterator[str]:
    """Namespace `name` in a cluster (Pod Security *restricted* enforced unless not
    `restricted`), once it has the default ServiceAccount pods need; deleted afterwards (one
    still being deleted from an earlier module is waited for first)."""
    from kubernetes import client

    from tooling.runs.app_namespace import ensure_app_namespace
    from tooling.waiting import wait_for

    core = client.CoreV1Api(api)
    wait_for(
        lambda: name not in {item.metadata.name for item in core.list_namespace().items},
        120,
        f"the namespace {name} of an earlier module to be deleted",
    )
    if restricted:
        ensure_app_namespace(core, name)
    else:
        core.create_namespace({"metadata": {"name": name}})
    try:
        wait_for_default_service_account(core, name)
        yield name
    finally:
        core.delete_namespace(name)


@contextlib.contextmanager
def node_namespace(node_cluster, name: str, *release_names: str) -> Iterator[tuple]:
    """On the node cluster: its kubeconfig, an API client and a namespace of the test's own
    (`namespace_in`); the releases RELEASE_NAMES (default the model server's) uninstalled
    afterwards and their pods waited for."""
    from kubernetes import client

    from tooling import releases
    from tooling.kube import api_client
    from tooling.names import RELEASE
    from tooling.waiting import wait_for

    api = api_client(node_cluster.kubeconfig)
    with namespace_in(api, name) as namespace:
        try:
            yield node_cluster.kubeconfig, api, namespace
        finally:
            for release in release_names or (RELEASE,):
                releases.uninstall(node_cluster.kubeconfig, release, namespace, wait=True)
            core = client.CoreV1Api(api)
            wait_for(
                lambda: not core.list_namespaced_pod(namespace).items,
                120,
                f"the pods of {namespace} to be gone",
            )
