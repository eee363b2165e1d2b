"""OTLP/HTTP span export with a direct protobuf encoder.

The stock exporter builds a tree of protobuf message objects per span (a Python object per
attribute, per value) and hashes each span's Resource through ``json.dumps`` to group them; on
this platform that was most of a sampled request's cost. :func:`encode_spans` writes the same
``ExportTraceServiceRequest`` bytes straight from the spans (the field numbers of
opentelemetry-proto's ``trace.proto`` and ``common.proto``); a test holds it to the stock
encoder message for message. Everything else — endpoint, headers, compression, retries, the
exporter's own metrics — stays the stock exporter's.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as _StockOTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind

_logger = logging.getLogger(__name__)

_SMALL = [bytes((n,)) for n in range(128)]
_U64 = (1 << 64) - 1
_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
_fixed32 = struct.Struct("<I").pack

_KIND = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
# SpanFlags: the parent's is-remote bit is known (0x100) and, when remote, set (0x200).
_FLAGS_LOCAL = b"\x85\x01" + _fixed32(0x100)
_FLAGS_REMOTE = b"\x85\x01" + _fixed32(0x300)
_LINK_FLAGS_LOCAL = b"\x35" + _fixed32(0x100)
_LINK_FLAGS_REMOTE = b"\x35" + _fixed32(0x300)


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    n = len(payload)
    return tag + (_SMALL[n] if n < 0x80 else _varint(n)) + payload


def _string(tag: bytes, text: str) -> bytes:
    return _field(tag, text.encode())


def _any_value(value: Any) -> bytes:
    """An ``AnyValue`` message body, for the types (and in the order) the stock encoder checks."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _string(b"\x0a", value)
    if isinstance(value, int):
        return b"\x18" + _varint(value & _U64)
    if isinstance(value, float):
        return b"\x21" + _double(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join([_field(b"\x0a", _any_value(v)) for v in value]))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join([_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()]))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> bytes:
    body = _any_value(value)
    return (_string(b"\x0a", key) if key else b"") + _field(b"\x12", body)


# Encoded attribute fields by (field tag, key, value), for string and integer values: most
# attributes repeat from span to span (method, scheme, route, status, addresses, db.system...).
# Emptied when full, so that high-cardinality values (paths, ids) never pin memory.
_encoded: dict[tuple[bytes, str, str | int], bytes] = {}
_ENCODED_MAX = 16384


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Repeated ``KeyValue`` fields; a value that cannot be encoded is logged and left out, as upstream."""
    if not attributes:
        return b""
    parts = []
    encoded = _encoded
    for key, value in attributes.items():
        kind = value.__class__
        # Exactly str or int: True == 1 and 1 == 1.0, which must not share an entry.
        cache_key = (tag, key, value) if kind is str or kind is int else None
        field = encoded.get(cache_key) if cache_key is not None else None
        if field is None:
            try:
                field = _field(tag, _key_value(key, value))
            except Exception as error:
                _logger.exception("Failed to encode key %s: %s", key, error)
                continue
            if cache_key is not None:
                if len(encoded) >= _ENCODED_MAX:
                    encoded.clear()
                encoded[cache_key] = field
        parts.append(field)
    return b"".join(parts)


def _span(span: ReadableSpan) -> bytes:
    ctx = span.context
    parent = span.parent
    out = [b"\x0a\x10", ctx.trace_id.to_bytes(16, "big"), b"\x12\x08", ctx.span_id.to_bytes(8, "big")]
    trace_state = ctx.trace_state
    if trace_state:
        out.append(_string(b"\x1a", ",".join([f"{k}={v}" for k, v in trace_state.items()])))
    if parent:
        out += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    if span.name:
        out.append(_string(b"\x2a", span.name))
    out += (b"\x30", _SMALL[_KIND[span.kind]])
    if span.start_time:
        out += (b"\x39", _fixed64(span.start_time))
    if span.end_time:
        out += (b"\x41", _fixed64(span.end_time))
    out.append(_attributes(b"\x4a", span.attributes))
    if span.dropped_attributes:
        out += (b"\x50", _varint(span.dropped_attributes))
    for event in span.events:
        body = [b"\x09", _fixed64(event.timestamp)] if event.timestamp else []
        if event.name:
            body.append(_string(b"\x12", event.name))
        body.append(_attributes(b"\x1a", event.attributes))
        if event.dropped_attributes:
            body += (b"\x20", _varint(event.dropped_attributes))
        out.append(_field(b"\x5a", b"".join(body)))
    if span.dropped_events:
        out += (b"\x60", _varint(span.dropped_events))
    for link in span.links:
        linked = link.context
        body = [b"\x0a\x10", linked.trace_id.to_bytes(16, "big"), b"\x12\x08", linked.span_id.to_bytes(8, "big")]
        body.append(_attributes(b"\x22", link.attributes))
        if link.dropped_attributes:
            body += (b"\x28", _varint(link.dropped_attributes))
        body.append(_LINK_FLAGS_REMOTE if linked.is_remote else _LINK_FLAGS_LOCAL)
        out.append(_field(b"\x6a", b"".join(body)))
    if span.dropped_links:
        out += (b"\x70", _varint(span.dropped_links))
    status = span.status
    if status is not None:
        body = [_string(b"\x12", status.description)] if status.description else []
        if status.status_code.value:
            body += (b"\x18", _varint(status.status_code.value))
        out.append(_field(b"\x7a", b"".join(body)))
    out.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
    return b"".join(out)


def _scope(scope: Any) -> bytes:
    if scope is None:
        return b""
    out = [_string(b"\x0a", scope.name)] if scope.name else []
    if scope.version:
        out.append(_string(b"\x12", scope.version))
    out.append(_attributes(b"\x1a", scope.attributes))
    return b"".join(out)


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` for these spans, grouped by resource and scope.

    Grouped as the stock encoder's dictionaries group them (equal resources and scopes together,
    in order of first appearance), looked up by identity first: one process has one of each.
    """
    resources: list[tuple[Any, list[tuple[Any, list[bytes]]], dict[int, tuple[Any, list[bytes]]]]] = []
    by_resource: dict[int, tuple[Any, list[tuple[Any, list[bytes]]], dict[int, tuple[Any, list[bytes]]]]] = {}
    for span in spans:
        resource = span.resource
        group = by_resource.get(id(resource))
        if group is None:
            group = next((g for g in resources if g[0] == resource), None)
            if group is None:
                group = (resource, [], {})
                resources.append(group)
            by_resource[id(resource)] = group
        scope = span.instrumentation_scope or None
        scoped = group[2].get(id(scope))
        if scoped is None:
            scoped = next((s for s in group[1] if s[0] == scope), None)
            if scoped is None:
                scoped = (scope, [])
                group[1].append(scoped)
            group[2][id(scope)] = scoped
        scoped[1].append(_span(span))
    out = []
    for resource, scopes, _ in resources:
        body = [_field(b"\x0a", _attributes(b"\x0a", resource.attributes))]
        for scope, encoded in scopes:
            part = [_field(b"\x0a", _scope(scope))]
            part += [_field(b"\x12", span_bytes) for span_bytes in encoded]
            if scope is not None and scope.schema_url:
                part.append(_string(b"\x1a", scope.schema_url))
            body.append(_field(b"\x12", b"".join(part)))
        if resource.schema_url:
            body.append(_string(b"\x1a", resource.schema_url))
        out.append(_field(b"\x0a", b"".join(body)))
    return b"".join(out)


class OTLPSpanExporter(_StockOTLPSpanExporter):
    """The stock OTLP/HTTP span exporter, encoding with :func:`encode_spans`.

    Falls back to the stock ``export`` if this release of the exporter is laid out differently.
    """

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        client = getattr(self, "_client", None)
        metrics = getattr(self, "_metrics", None)
        if client is None or metrics is None or self._shutdown:
            return super().export(spans)
        with metrics.export_operation(len(spans)) as result:
            try:
                serialized = encode_spans(spans)
            except Exception as error:
                _logger.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            limit = getattr(self, "_max_request_size", 0)
            if limit and 0 < limit < len(serialized):
                # The stock exporter's answer to an oversized batch, with its warning and error.
                return super().export(spans)
            outcome = client.export(serialized)
            if not outcome.success:
                result.error = outcome.error
                result.error_attrs = (
                    {"http.response.status_code": outcome.status_code} if outcome.status_code is not None else None
                )
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
