"""The ResNet101 classifier: export to TF Serving's layout, warmup records, packaging."""
