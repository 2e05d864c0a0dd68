"""GKE: the cluster with its autoscaled node pool, credentials, and the model's bucket."""
