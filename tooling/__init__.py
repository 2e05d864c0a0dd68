"""resnet-serving: deploy, autoscale and load-test ResNet101 on TF Serving."""
