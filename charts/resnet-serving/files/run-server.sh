#!/bin/sh
# The model server container's PID 1 (server.stopOnSigterm). tensorflow_model_server installs
# no SIGTERM handler (tensorflow/serving#1853), and a PID 1 without a handler never receives
# SIGTERM, so run as PID 1 it serves on until terminationGracePeriodSeconds and is SIGKILLed.
# This sh starts it as a child, for which SIGTERM keeps its default action (exit), and passes the
# kubelet's SIGTERM on. The kubelet sends it when the preStop sleep ends, by which time the pod
# has left the Service's endpoints and answered what it had in flight. The arguments are
# tensorflow_model_server's flags, passed unchanged.
set -u

say() { echo "run-server: $*" >&2; }

server=""
stopping=""
stop() {
  stopping=1
  say "SIGTERM (the preStop drain is over): stopping tensorflow_model_server"
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; fi
}
trap stop TERM

tensorflow_model_server "$@" &
server=$!
if [ -n "$stopping" ]; then kill -TERM "$server" 2>/dev/null || true; fi

wait "$server"
status=$?
# A trapped signal ends `wait` early; wait for the server itself.
while kill -0 "$server" 2>/dev/null; do
  wait "$server"
  status=$?
done
if [ -n "$stopping" ]; then
  say "tensorflow_model_server stopped"
  exit 0
fi
say "tensorflow_model_server exited with status $status"
exit "$status"
