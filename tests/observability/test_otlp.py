"""Our OTLP encoder writes the very message the stock exporter's encoder builds."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as stock_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from observability.otlp import OTLPSpanExporter, encode_spans
from tests.conftest import free_port
from tests.otlp_receiver import OtlpReceiver


def _spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    limits = SpanLimits(max_span_attributes=12, max_events=2, max_links=1, max_attribute_length=40)
    resources = [
        Resource.create({"service.name": "users", "deployment.environment.name": "test"}),
        Resource({"service.name": "courses", "weights": (1, 2, 3)}, schema_url="https://opentelemetry.io/schemas/1.21"),
    ]
    for resource in (*resources, Resource({"service.name": "users"})):
        provider = TracerProvider(resource=resource, span_limits=limits)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        http = provider.get_tracer("cerebrum.http", "1.0", schema_url="https://opentelemetry.io/schemas/1.26")
        redis = provider.get_tracer("opentelemetry.instrumentation.redis", attributes={"scope.kind": "library"})
        bare = provider.get_tracer("")
        remote = SpanContext(
            0x4BF92F3577B34DA6A3CE929D0E0E4736,
            0x00F067AA0BA902B7,
            True,
            TraceFlags(1),
            TraceState([("vendor", "abc"), ("other", "x=1")]),
        )
        with http.start_as_current_span(
            "GET /users/{user_id}",
            context=set_span_in_context(NonRecordingSpan(remote)),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "url.path": "/users/8b1f" + "é" * 60,
                "server.port": 8000,
                "negative": -42,
                "big": 2**62,
                "ratio": 0.25,
                "flag": False,
                "empty": "",
                "tags": ["a", "b"],
                "bools": [True, False],
                "floats": (1.5, -2.0),
            },
        ) as server:
            server.add_event("chaos.fault", {"chaos.fault.kind": "latency", "delay_ms": 12.5})
            server.add_event("no attributes")
            server.add_event("dropped")
            server.set_attribute("overflow", "x")
            server.set_status(Status(StatusCode.ERROR, "boom"))
            with redis.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={"db.system": "redis"}):
                pass
            with bare.start_as_current_span(
                "publish",
                kind=SpanKind.PRODUCER,
                links=[Link(remote, {"messaging.system": "rabbitmq"}), Link(server.get_span_context())],
            ) as producer:
                producer.set_status(Status(StatusCode.OK))
            with http.start_as_current_span("consume", kind=SpanKind.CONSUMER) as consumer:
                consumer.record_exception(ValueError("bad"))
            with http.start_as_current_span("internal"):
                pass
    return list(exporter.get_finished_spans())


def test_the_message_is_the_stock_encoders_message() -> None:
    spans = _spans()
    assert len(spans) == 15
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    assert ours == stock_encode(spans)
    assert encode_spans(spans) == stock_encode(spans).SerializeToString()


def test_each_span_alone_and_an_empty_batch() -> None:
    for span in _spans():
        assert encode_spans([span]) == stock_encode([span]).SerializeToString()
    assert encode_spans([]) == b""


def test_a_value_that_cannot_be_encoded_is_left_out_as_upstream_does() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attributes = {"ok": "fine", "lone surrogate": "a\ud800b", "after": 1}
    with provider.get_tracer("t").start_as_current_span("x", attributes=attributes):
        pass
    spans = exporter.get_finished_spans()
    assert encode_spans(spans) == stock_encode(spans).SerializeToString()


def test_the_exporter_delivers_batches_to_an_otlp_receiver() -> None:
    receiver = OtlpReceiver(free_port())
    receiver.start()
    try:
        exporter = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces")
        spans = _spans()
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        received = receiver.snapshot()
        assert [(s.name, s.span_id) for s in received] == [(s.name, format(s.context.span_id, "016x")) for s in spans]
        server = next(s for s in received if s.name == "GET /users/{user_id}")
        assert server.attributes["http.request.method"] == "GET" and server.kind == 2
        exporter.shutdown()
        assert exporter.export(spans) is SpanExportResult.FAILURE
    finally:
        receiver.stop()


def test_an_unreachable_receiver_is_a_failed_export() -> None:
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{free_port()}/v1/traces", timeout=1)
    assert exporter.export(_spans()[:1]) is SpanExportResult.FAILURE
