module resnet-serving/bench/trivial_endpoint

go 1.26
