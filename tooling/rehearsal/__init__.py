"""The local rehearsal: a real control plane with kwok-simulated nodes and pods, where the only
simulated part of the autoscaling story is how busy each pod's CPU is (the load model)."""
