"""The load side: the one locustfile (shared with charts/locust) and its load shapes."""

from pathlib import Path

LOADGEN_DIR = Path(__file__).resolve().parent
LOCUSTFILE = LOADGEN_DIR / "locustfile.py"
LOAD_SHAPES_FILE = LOADGEN_DIR / "load_shapes.py"
# The modules beside the locustfile that it imports; charts/locust mounts them with it.
LOCUSTFILE_MODULES = (LOAD_SHAPES_FILE, LOADGEN_DIR / "predict_wire.py")
