"""The exported model's serving signatures: their names, the input each takes (encoded images,
sent as {"b64": …}) and how many classes each answers with. The contract between the export,
its warmup records, the servers and the locustfile."""

from __future__ import annotations

TOP_K = 5
# serving_preprocess keeps the lab's request body (`raw_images`); serving_default's input name
# ends in _bytes so TF Serving's REST API takes {"b64": …} for it.
SIGNATURE_INPUTS = {"serving_default": "image_bytes", "serving_preprocess": "raw_images"}
