"""What a run on any cluster shares: the autoscaling story, its timeline, its load sources."""
