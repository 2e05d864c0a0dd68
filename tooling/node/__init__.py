"""The real node: containerd, the kubelet and the local images they run (docs/node.md)."""
