"""A local model server on the TF runtime that speaks TF Serving's REST and gRPC APIs.

Production serves with the real `tensorflow/serving` image (charts/resnet-serving). Where no
container runtime exists (CI, this project's development machines), `resnet-serving serve-local`
runs the same SavedModel behind the same API, with TF Serving's flag names, so clients, the
locustfile and the tests need no second code path. It is not TF Serving: one process, Python
HTTP and gRPC front ends, and a batching queue modelled on TF Serving's.
"""
