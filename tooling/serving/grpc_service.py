"""TF Serving's gRPC API (port 8500): PredictionService (Predict, GetModelMetadata) and
ModelService (GetModelStatus), built from tensorflow-serving-api's own protos."""

from __future__ import annotations

from concurrent import futures

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tooling.serving.core import ModelServer
from tooling.serving.errors import ServingError


def _version(model_spec: object) -> int | None:
    return model_spec.version.value if model_spec.HasField("version") else None


def _abort(context: grpc.ServicerContext, error: ServingError) -> None:
    context.abort(getattr(grpc.StatusCode, error.code, grpc.StatusCode.INTERNAL), error.message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, model_server: ModelServer) -> None:
        self.model_server = model_server

    def Predict(self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext) -> object:
        import tensorflow as tf

        spec = request.model_spec
        signature = spec.signature_name or "serving_default"
        try:
            inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
            servable, outputs = self.model_server.predict(
                spec.name, _version(spec), signature, inputs, "predict"
            )
        except ServingError as error:
            _abort(context, error)
        wanted = set(request.output_filter) or set(outputs)
        unknown = wanted - set(outputs)
        if unknown:
            _abort(
                context,
                ServingError(
                    "INVALID_ARGUMENT", f"output_filter names unknown outputs {sorted(unknown)}"
                ),
            )
        response = predict_pb2.PredictResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature
        for key in sorted(wanted):
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
        return response

    def GetModelMetadata(self, request: object, context: grpc.ServicerContext) -> object:
        spec = request.model_spec
        try:
            if list(request.metadata_field) != ["signature_def"]:
                raise ServingError(
                    "INVALID_ARGUMENT", "Metadata field signature_def is the only one supported"
                )
            servable = self.model_server.servable(spec.name, _version(spec))
        except ServingError as error:
            _abort(context, error)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def Classify(self, request: object, context: grpc.ServicerContext) -> object:
        _abort(context, ServingError("UNIMPLEMENTED", "Classify is not supported; use Predict"))

    def Regress(self, request: object, context: grpc.ServicerContext) -> object:
        _abort(context, ServingError("UNIMPLEMENTED", "Regress is not supported; use Predict"))

    def MultiInference(self, request: object, context: grpc.ServicerContext) -> object:
        _abort(
            context, ServingError("UNIMPLEMENTED", "MultiInference is not supported; use Predict")
        )


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, model_server: ModelServer) -> None:
        self.model_server = model_server

    def GetModelStatus(self, request: object, context: grpc.ServicerContext) -> object:
        spec = request.model_spec
        try:
            servable = self.model_server.servable(spec.name, _version(spec))
        except ServingError as error:
            _abort(context, error)
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add()
        status.version = servable.version
        status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


def make_grpc_server(
    model_server: ModelServer, port: int, threads: int = 32
) -> tuple[grpc.Server, int]:
    """A gRPC server on 0.0.0.0:`port` (0 picks a free one); returns it and its port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads),
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(model_server), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(model_server), server)
    bound = server.add_insecure_port(f"0.0.0.0:{port}")
    return server, bound
