"""Names every part of the project shares, defined once: the served model, TF Serving's ports,
the namespace and the helm releases the story installs (the locustfile, mounted alone in the
Locust chart, keeps its own defaults)."""

from __future__ import annotations

MODEL_NAME = "image_classifier"  # the lab's model name, served at /v1/models/image_classifier
GRPC_PORT = 8500  # TF Serving's gRPC port
REST_PORT = 8501  # TF Serving's REST port (and its Prometheus metrics)

APP_NAMESPACE = "resnet-serving"  # Pod Security *restricted* enforced
RELEASE = "resnet"  # the model server's helm release (charts/resnet-serving)
SERVER_NAME = f"{RELEASE}-resnet-serving"  # its Deployment, Service and HPA
SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=resnet-serving"
SERVER_URL = f"http://{SERVER_NAME}:{REST_PORT}"  # the Service, as Locust reaches it
LOAD_RELEASE = "load"  # the Locust chart's release
MASTER_NAME = f"{LOAD_RELEASE}-locust-master"  # its master's Service
# its headless master's Job (named with a hash of its pods: found by label, not by name)
MASTER_SELECTOR = (
    f"app.kubernetes.io/instance={LOAD_RELEASE},app.kubernetes.io/name=locust,"
    "app.kubernetes.io/component=master"
)
