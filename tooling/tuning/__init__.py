"""`resnet-serving tune`: the rehearsal over a few chart configurations, side by side."""
