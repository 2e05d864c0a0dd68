"""What only real containers show: the model server chart on the node cluster's real pods, in
namespaces of the tests' own (PSS *restricted* enforced), the chart installed with
ci/node-values.yaml plus the overrides here. The fetch, startup-probe and security checks share
one release (`served`), installed after the tests that need the node's room to themselves:

- the fetch-model init container fetches the tarball over https from the node's model store
  (TLS by the cluster's CA), and the pod answers a predict call at its IP and its Service's;
- a wrong model URI (a host that does not resolve, a 404 path, a certificate the fetcher does
  not trust) fails the pod with a message in its status, `kubectl describe` and the log that
  says what went wrong and what to set;
- the startup probe holds the pod unready until the model answers;
- the runtime enforces the chart's security contexts (uid, no capabilities, no_new_privs,
  seccomp, read-only root filesystem) and refuses a root image without runAsUser;
- the overprovisioning placeholder is preempted by a new replica.

The host routes the pod (10.234.0.0/24) and Service (10.0.0.0/24) ranges, so the tests call the
server directly.
"""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import RESNET_CHART, node_namespace
from kubernetes import client, watch
from kubernetes.utils import parse_quantity

from tooling import paths, releases
from tooling.model.signatures import TOP_K
from tooling.names import MODEL_NAME, RELEASE, REST_PORT, SELECTOR, SERVER_NAME
from tooling.node.containerd import ContainerdPaths
from tooling.node.model_store import MODEL_STORE_URI
from tooling.providers.node import NODE_VALUES
from tooling.waiting import wait_for

FETCH = "fetch-model"  # the init container
SERVER = "tensorflow-serving"  # the model server container
METADATA = f"/v1/models/{MODEL_NAME}/metadata"  # what the startup and readiness probes ask
PLACEHOLDER_SELECTOR = "app.kubernetes.io/component=overprovisioning"
TEST_IMAGE = RESNET_CHART / "files" / "test-image.jpg"


def server_values(*overrides: dict) -> tuple[dict, ...]:
    """The node's values, one fixed replica (no HPA), no preStop sleep (no test here stops a
    replica under load: uninstall need not wait 15 s per pod), then `overrides` (later win)."""
    fixed = {"autoscaling": {"enabled": False}, "replicaCount": 1, "preStopSleepSeconds": 0}
    return (*releases.values_from_files(NODE_VALUES["resnet-serving"]), fixed, *overrides)


def kubectl(kubeconfig: Path, *args: str, check: bool = True) -> str:
    command = [str(paths.tool("kubectl")), f"--kubeconfig={kubeconfig}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if check and done.returncode:
        raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout + done.stderr


def selector_of(release: str) -> str:
    return SELECTOR.replace(f"instance={RELEASE}", f"instance={release}")


def server_pods(core: client.CoreV1Api, namespace: str, release: str = RELEASE) -> list:
    return core.list_namespaced_pod(namespace, label_selector=selector_of(release)).items


def one_server_pod(core: client.CoreV1Api, namespace: str, release: str = RELEASE) -> object:
    (pod,) = server_pods(core, namespace, release)
    return pod


def condition(pod: object, kind: str) -> object | None:
    return next((c for c in pod.status.conditions or [] if c.type == kind), None)


def is_ready(pod: object) -> bool:
    ready = condition(pod, "Ready")
    return ready is not None and ready.status == "True"


def http_json(url: str, body: bytes | None = None, timeout: float = 30) -> dict:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return json.load(reply)


def answers_metadata(address: str) -> bool:
    try:
        http_json(f"http://{address}:{REST_PORT}{METADATA}", timeout=1)
    except (OSError, ValueError):
        return False
    return True


def predict(address: str) -> dict:
    """The predict call helm test makes, from the host: the chart's test image, as b64."""
    image = base64.b64encode(TEST_IMAGE.read_bytes()).decode()
    body = json.dumps({"instances": [{"b64": image}]}).encode()
    return http_json(f"http://{address}:{REST_PORT}/v1/models/{MODEL_NAME}:predict", body)


def assert_top_k(reply: dict) -> None:
    (prediction,) = reply["predictions"]
    probabilities, classes = prediction["probabilities"], prediction["classes"]
    assert len(probabilities) == len(classes) == TOP_K, prediction
    assert all(0 < p <= 1 for p in probabilities), probabilities
    assert probabilities == sorted(probabilities, reverse=True), probabilities
    assert sum(probabilities) <= 1 + 1e-4, probabilities
    assert all(isinstance(c, int) and 0 <= c < 1000 for c in classes), classes


def pod_events(core: client.CoreV1Api, namespace: str, pod: str) -> list:
    return core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod}").items


def event_time(event: object) -> datetime.datetime:
    return event.last_timestamp or event.event_time or event.first_timestamp


# release: (model.source overrides, what the message must name: the cause, then what to do)
BAD_SOURCES = {
    "bad-host": (
        {"uri": "https://no-such-host.invalid/resnet101.tar.gz"},
        ("Could not resolve host", "check the URL"),
    ),
    "bad-path": (
        {"uri": MODEL_STORE_URI.replace("resnet101.tar.gz", "no-such-model.tar.gz")},
        ("404", "check the URL"),
    ),
    "bad-ca": (
        {"caBundle": {"configMap": ""}},  # the store's certificate, signed by the cluster's CA
        ("certificate", "set model.source.caBundle.configMap"),
    ),
}
SMALL = {"resources": {"requests": {"cpu": "50m", "memory": "128Mi"}}}  # the server never starts


def fetch_failure(pod: object) -> object | None:
    """The init container's last failed run (its terminated state), or None yet."""
    for status in pod.status.init_container_statuses or []:
        for state in (status.state, status.last_state):
            ended = state and state.terminated
            if ended and ended.exit_code != 0:
                return ended
    return None


def fetch_log(core: client.CoreV1Api, namespace: str, pod: str) -> str:
    """The init container's log: the current run's, with the previous run's when it restarted."""
    log = ""
    for previous in (True, False):
        with suppress(client.ApiException):
            text = core.read_namespaced_pod_log(pod, namespace, container=FETCH, previous=previous)
            if not text.startswith("unable to retrieve container logs"):  # no previous run
                log += text
    return log


def failed_run_log(core: client.CoreV1Api, namespace: str, pod: str, timeout: float = 30) -> str:
    """The init container's log once it holds a whole failed run (the script's ERROR line), or
    the last log read after `timeout`. One read can miss it: between the pod's status and the
    log read the kubelet may restart the container, whose new run has only begun."""
    deadline = time.monotonic() + timeout
    while True:
        log = fetch_log(core, namespace, pod)
        if "fetch-model: ERROR:" in log or time.monotonic() > deadline:
            return log
        time.sleep(0.5)


def test_a_wrong_model_uri_fails_the_pod_saying_what_to_do(node_cluster):
    started = time.monotonic()
    with node_namespace(node_cluster, "real-pods-bad-uri", *BAD_SOURCES) as (
        kubeconfig,
        api,
        namespace,
    ):
        core = client.CoreV1Api(api)
        for release, (source, _) in BAD_SOURCES.items():
            values = server_values(SMALL, {"model": {"source": source}})
            releases.install(kubeconfig, release, "resnet-serving", namespace, *values)
        for release in BAD_SOURCES:
            wait_for(
                lambda release=release: fetch_failure(one_server_pod(core, namespace, release)),
                90,
                f"the fetch-model container of {release} to fail",
            )
        problems = []
        for release, (_, (cause, remedy)) in BAD_SOURCES.items():
            pod = one_server_pod(core, namespace, release)
            name = pod.metadata.name
            message = fetch_failure(pod).message or ""
            log = failed_run_log(core, namespace, name)
            described = kubectl(kubeconfig, "-n", namespace, "describe", "pod", name)
            print(f"{release}: status message: {message!r}\n  log: {log.strip()!r}")
            (server,) = pod.status.container_statuses
            assert server.state.waiting and not server.ready, server  # never started
            for where, text in (("status", message), ("log", log), ("describe", described)):
                missing = [part for part in (cause, remedy) if part not in " ".join(text.split())]
                if missing:
                    problems.append(f"{release}: {where} lacks {missing}")
        assert not problems, problems
    print(f"wall {time.monotonic() - started:.0f} s")


def server_failure(pod: object) -> object | None:
    """The server container's last failed run (its terminated state), or None yet."""
    for status in pod.status.container_statuses or []:
        for state in (status.state, status.last_state):
            ended = state and state.terminated
            if ended and ended.exit_code != 0:
                return ended
    return None


def test_a_server_that_exits_at_start_says_why_in_the_pod_status(node_cluster):
    """A flag the server refuses (TF Serving prints its usage; the stand-in one line, exit 2):
    the reason must reach the pod's status, which `kubectl describe` shows, not only the log."""
    started = time.monotonic()
    with node_namespace(node_cluster, "real-pods-bad-flag") as (kubeconfig, api, namespace):
        core = client.CoreV1Api(api)
        values = server_values(SMALL, {"server": {"extraArgs": ["--no_such_flag=1"]}})
        releases.install(kubeconfig, RELEASE, "resnet-serving", namespace, *values)
        wait_for(
            lambda: server_failure(one_server_pod(core, namespace)),
            120,
            "the server container to exit",
        )
        pod = one_server_pod(core, namespace)
        ended = server_failure(pod)
        described = kubectl(kubeconfig, "-n", namespace, "describe", "pod", pod.metadata.name)
        print(f"the server's termination: exit {ended.exit_code}, message {ended.message!r}")
        refusal = "unknown option(s) --no_such_flag=1"
        assert ended.exit_code == 2
        assert refusal in (ended.message or ""), ended
        assert refusal in described
    print(f"wall {time.monotonic() - started:.0f} s")


class PodWatch:
    """Every change of the namespace's pods, as (event type, name, uid, conditions), from a
    watch in a thread of its own (a preempted placeholder is gone within a second)."""

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.seen: list[tuple[str, str, str, set[tuple[str, str, str | None]]]] = []
        self.error = ""
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(core, namespace), daemon=True)
        self._thread.start()

    def _run(self, core: client.CoreV1Api, namespace: str) -> None:
        stream = self._watch.stream(
            core.list_namespaced_pod, namespace, timeout_seconds=300, _request_timeout=330
        )
        try:
            for event in stream:
                pod = event["object"]
                conditions = {(c.type, c.status, c.reason) for c in pod.status.conditions or []}
                self.seen.append((event["type"], pod.metadata.name, pod.metadata.uid, conditions))
        except Exception as error:  # said by the assertions that need what it would have seen
            self.error = repr(error)

    def stop(self) -> None:
        self._watch.stop()

    def conditions_of(self, uid: str) -> set[tuple[str, str, str | None]]:
        return set().union(*(conditions for _, _, seen, conditions in self.seen if seen == uid))

    def deleted(self, uid: str) -> bool:
        return any(kind == "DELETED" and seen == uid for kind, _, seen, _ in self.seen)


def cpu_requested(pod: object) -> float:
    """The pod's CPU request as the scheduler counts it: the containers' sum, or the largest
    init container's if larger."""

    def request(container: object) -> float:
        requests = (container.resources and container.resources.requests) or {}
        return float(parse_quantity(requests.get("cpu", "0")))

    containers = sum(request(c) for c in pod.spec.containers)
    return max([containers, *(request(c) for c in pod.spec.init_containers or [])])


def free_cpu(core: client.CoreV1Api, node: str) -> float:
    allocatable = float(parse_quantity(core.read_node(node).status.allocatable["cpu"]))
    pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    live = [pod for pod in pods if pod.status.phase not in ("Succeeded", "Failed")]
    return allocatable - sum(cpu_requested(pod) for pod in live)


OVERPROVISIONING = {
    "overprovisioning": {
        "enabled": True,
        "replicas": 1,
        "image": {"repository": "resnet-serving/pause", "tag": "3.10", "pullPolicy": "Never"},
    }
}


def test_a_new_replica_preempts_the_overprovisioning_placeholder(node_cluster):
    started = time.monotonic()
    with node_namespace(node_cluster, "real-pods-preempt") as (kubeconfig, api, namespace):
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        scheduling = client.SchedulingV1Api(api)
        values = server_values(OVERPROVISIONING)
        releases.install(kubeconfig, RELEASE, "resnet-serving", namespace, *values, wait=True)
        (placeholder,) = core.list_namespaced_pod(
            namespace, label_selector=PLACEHOLDER_SELECTOR
        ).items
        replica = one_server_pod(core, namespace)
        assert is_ready(replica) and placeholder.status.phase == "Running"
        priority = scheduling.read_priority_class(placeholder.spec.priority_class_name)
        assert (
            priority.value < (replica.spec.priority or 0) and priority.preemption_policy == "Never"
        )
        node = replica.spec.node_name
        free, held = free_cpu(core, node), cpu_requested(placeholder)
        print(
            f"node {node}: {free:.3f} CPU free, the placeholder holds {held:.3f}, "
            f"a replica asks {cpu_requested(replica):.3f}"
        )
        assert free < cpu_requested(replica) <= free + held  # room only if the placeholder goes

        pods = PodWatch(core, namespace)
        scaled = time.monotonic()
        apps.patch_namespaced_deployment_scale(SERVER_NAME, namespace, {"spec": {"replicas": 2}})
        try:
            wait_for(
                lambda: sum(is_ready(pod) for pod in server_pods(core, namespace)) == 2,
                180,
                "the second replica to be Ready",
            )
            ready_after = time.monotonic() - scaled
            wait_for(
                lambda: pods.deleted(placeholder.metadata.uid),
                30,
                "the placeholder to be deleted",
            )
        finally:
            pods.stop()
        (new,) = [p for p in server_pods(core, namespace) if p.metadata.uid != replica.metadata.uid]
        preempted = [
            event
            for event in pod_events(core, namespace, placeholder.metadata.name)
            if event.reason == "Preempted"
        ]
        disruption = {
            c for c in pods.conditions_of(placeholder.metadata.uid) if c[0] == "DisruptionTarget"
        }
        (successor,) = core.list_namespaced_pod(
            namespace, label_selector=PLACEHOLDER_SELECTOR
        ).items
        scheduled = condition(successor, "PodScheduled")
        print(
            f"the second replica Ready {ready_after:.0f} s after the scale-up; the placeholder: "
            f"{[e.message for e in preempted]}, {disruption}; "
            f"its successor {successor.status.phase} "
            f"({scheduled and scheduled.reason}: {scheduled and scheduled.message})"
        )
        assert preempted, pod_events(core, namespace, placeholder.metadata.name)
        by = preempted[0].message or ""
        assert new.metadata.uid in by or new.metadata.name in by, by  # by the new replica
        expected = ("DisruptionTarget", "True", "PreemptionByScheduler")
        assert expected in disruption, (disruption, pods.error)
        # the successor waits: it may not preempt anything (preemptionPolicy Never), no room
        assert successor.status.phase == "Pending" and scheduled.reason == "Unschedulable"
    left = [item.metadata.name for item in scheduling.list_priority_class().items]
    assert priority.metadata.name not in left  # cluster-wide: helm uninstall removed it
    print(f"wall {time.monotonic() - started:.0f} s")


@dataclass
class ServedRelease:
    """The model server's release that the fetch, startup-probe and security tests share:
    installed once with the node's values, its readiness sampled from the install on."""

    kubeconfig: Path
    api: client.ApiClient
    namespace: str
    samples: list[tuple[float, bool, bool]]  # (seconds, Ready, the model answered)
    ready_after: float


@pytest.fixture(scope="module")
def served(node_cluster) -> Iterator[ServedRelease]:
    """Installs the release and samples, every 0.25 s until the replica is Ready, whether the
    pod is Ready and whether its model answers (read in that order: Ready then implies the
    model answered by then)."""
    started = time.monotonic()
    with node_namespace(node_cluster, "real-pods") as (kubeconfig, api, namespace):
        core = client.CoreV1Api(api)
        releases.install(kubeconfig, RELEASE, "resnet-serving", namespace, *server_values())
        samples: list[tuple[float, bool, bool]] = []

        def sample() -> bool:
            pods = server_pods(core, namespace)
            if len(pods) != 1 or not pods[0].status.pod_ip:
                return False
            ready = is_ready(pods[0])
            samples.append((time.monotonic(), ready, answers_metadata(pods[0].status.pod_ip)))
            return ready

        wait_for(sample, 180, "the replica to be Ready", period=0.25)
        ready_after = time.monotonic() - started
        print(f"the shared release: Ready after {ready_after:.0f} s")
        yield ServedRelease(kubeconfig, api, namespace, samples, ready_after)


def test_init_container_fetches_the_model_over_https_and_the_pod_answers(node_cluster, served):
    core, namespace = client.CoreV1Api(served.api), served.namespace
    pod = one_server_pod(core, namespace)
    assert is_ready(pod)
    (fetch,) = pod.status.init_container_statuses
    assert fetch.state.terminated.exit_code == 0, fetch.state
    log = core.read_namespaced_pod_log(pod.metadata.name, namespace, container=FETCH)
    print(f"fetch-model's log:\n{log}")
    assert f"fetch-model: downloading {MODEL_STORE_URI}" in log
    assert f"fetch-model: model ready in /models/{MODEL_NAME}, versions: 1" in log
    store_log = ContainerdPaths(node_cluster.name).run / "model-store" / "model-store.log"
    fetched = [
        line
        for line in store_log.read_text().splitlines()
        if f"model-store: {pod.status.pod_ip} " in line and '"GET /resnet101.tar.gz' in line
    ]
    assert fetched and fetched[-1].split()[-2] == "200", fetched  # the store served it
    service = core.read_namespaced_service(SERVER_NAME, namespace).spec.cluster_ip
    for address in (pod.status.pod_ip, service):
        reply = predict(address)
        print(f"predict at {address}: {reply}")
        assert_top_k(reply)


def test_the_startup_probe_holds_the_pod_unready_until_the_model_answers(served):
    core, namespace, samples = client.CoreV1Api(served.api), served.namespace, served.samples
    kubeconfig = served.kubeconfig
    pod = one_server_pod(core, namespace)
    early = [t for t, ready, answered in samples if ready and not answered]
    assert not early, samples  # Ready while the model did not answer
    first_answer = next(i for i, (_, _, answered) in enumerate(samples) if answered)
    first_ready = next(i for i, (_, ready, _) in enumerate(samples) if ready)
    assert first_ready >= first_answer, samples
    unready_answers = sum(1 for _, ready, answered in samples if answered and not ready)

    log = kubectl(
        kubeconfig, "-n", namespace, "logs", "--timestamps", pod.metadata.name, "-c", SERVER
    )
    stamps = {}
    for line in log.splitlines():
        stamp, _, text = line.partition(" ")
        for key in ("Loaded servable", "Exporting HTTP/REST API"):
            if text.startswith(key):
                stamps[key] = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert set(stamps) == {"Loaded servable", "Exporting HTTP/REST API"}, log
    serving = stamps["Exporting HTTP/REST API"]
    ready_at = condition(pod, "Ready").last_transition_time  # whole seconds
    (server,) = pod.status.container_statuses
    container_started = server.state.running.started_at
    probe_failures = [
        event
        for event in pod_events(core, namespace, pod.metadata.name)
        if event.reason == "Unhealthy" and "Startup probe failed" in (event.message or "")
    ]
    failures = sum(event.count or 1 for event in probe_failures)
    print(
        f"container started {container_started:%H:%M:%S}, model loaded "
        f"{stamps['Loaded servable']:%H:%M:%S.%f}, REST serving {serving:%H:%M:%S.%f}, "
        f"Ready {ready_at:%H:%M:%S}; {failures} startup probe failures "
        f"({[e.message for e in probe_failures]}); {len(samples)} samples, the model "
        f"answered while unready in {unready_answers}"
    )
    assert ready_at >= serving.replace(microsecond=0)
    assert failures >= 1  # the probe ran before the model was loaded, and held the pod
    last_failure = max(event_time(event) for event in probe_failures)
    assert last_failure <= serving + datetime.timedelta(seconds=1)


# Run in the server container: the uid, capabilities, no_new_privs and seccomp of PID 1 (the
# chart's run-server.sh), of the server itself and of this process; and a write in each folder.
PROBE = r"""
import errno, json, os, sys
def status(pid):
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status") if ":" in line)
    keep = ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp")
    return {key: fields[key].split() for key in keep}
server = [p for p in os.listdir("/proc") if p.isdigit() and p != str(os.getpid())
          and b"serve-local" in open(f"/proc/{p}/cmdline", "rb").read()]
writes = {}
for folder in sys.argv[1:]:
    path = os.path.join(folder, ".write-probe")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as error:
        writes[folder] = errno.errorcode[error.errno]
    else:
        os.unlink(path)
        writes[folder] = "ok"
root = [line.split()[5] for line in open("/proc/self/mountinfo") if line.split()[4] == "/"]
print(json.dumps({"status": {"1": status(1), "server": status(server[0]),
                             "self": status("self")}, "writes": writes, "root": root}))
"""
# (not /root: uid 1000 may not search it, EACCES before the file system is asked)
READ_ONLY = ["/", "/usr", "/etc", "/var", "/var/tmp", f"/models/{MODEL_NAME}", "/etc/tfserving"]
WRITABLE = ["/tmp"]  # the chart's emptyDir; the model volume is read-only for the server


def root_image_pod(namespace: str) -> dict:
    """The stand-in (its user root, as tensorflow/serving's) with runAsNonRoot and no runAsUser:
    *restricted* admits it; the kubelet must refuse to start it."""
    return {
        "metadata": {"name": "root-image", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "root",
                    "image": "resnet-serving/tfserving-stand-in:2.21.0",
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", "id"],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def test_the_runtime_enforces_the_security_contexts_and_the_read_only_root(served):
    core, namespace, kubeconfig = client.CoreV1Api(served.api), served.namespace, served.kubeconfig
    pod = one_server_pod(core, namespace)
    context = {
        **pod.spec.security_context.to_dict(),
        **{k: v for k, v in pod.spec.containers[0].security_context.to_dict().items() if v},
    }
    uid, gid = context["run_as_user"], context["run_as_group"]
    assert context["run_as_non_root"] and uid != 0, context
    out = kubectl(
        kubeconfig,
        "-n",
        namespace,
        "exec",
        pod.metadata.name,
        "-c",
        SERVER,
        "--",
        "python3",
        "-c",
        PROBE,
        *READ_ONLY,
        *WRITABLE,
    )
    found = json.loads(out)
    print(f"in the server container: {found}")
    for who, status in found["status"].items():
        assert status["Uid"] == [str(uid)] * 4, (who, status)
        assert status["Gid"] == [str(gid)] * 4, (who, status)
        assert str(context["fs_group"]) in status["Groups"], (who, status)
        for caps in ("CapEff", "CapPrm", "CapBnd"):
            assert int(status[caps][0], 16) == 0, (who, caps, status)
        assert status["NoNewPrivs"] == ["1"], (who, status)
        assert status["Seccomp"] == ["2"], (who, status)  # a filter: RuntimeDefault
    assert found["writes"] == {
        **dict.fromkeys(READ_ONLY, "EROFS"),
        **dict.fromkeys(WRITABLE, "ok"),
    }, found["writes"]
    assert "ro" in found["root"][0].split(","), found["root"]

    core.create_namespaced_pod(namespace, root_image_pod(namespace))
    refused: list[str] = []

    def refused_to_start() -> bool:
        (status,) = core.read_namespaced_pod("root-image", namespace).status.container_statuses or [
            None
        ]
        waiting = status and status.state.waiting
        if waiting and waiting.reason == "CreateContainerConfigError":
            refused.append(waiting.message)
        return bool(refused) or bool(status and status.state.terminated)

    wait_for(refused_to_start, 60, "the kubelet to refuse the root image")
    print(f"root image without runAsUser: {refused}")
    assert refused and "runAsNonRoot and image will run as root" in refused[0], refused
    core.delete_namespaced_pod("root-image", namespace, grace_period_seconds=0)
