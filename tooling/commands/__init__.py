"""One module per CLI verb: each has `register(subparsers)` and a handler taking the args."""
