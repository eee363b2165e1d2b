"""A minimal OTLP/HTTP receiver that accepts spans, so export cost is real in benchmarks.

``python -m bench.otlp_sink PORT`` drops what it receives; ``python -m bench.otlp_sink PORT FILE``
also appends each span (service, name, kind, trace, span and parent ids, start and end in ns) to
FILE as a JSON line, for the benches that read a request's path from its trace.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=200, content_type="application/x-protobuf", body=b"")


Handler = Callable[[web.Request], Awaitable[web.Response]]


def keeper(out: TextIO) -> Handler:
    async def keep(request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for spans in export.resource_spans:
            service = next(
                (a.value.string_value for a in spans.resource.attributes if a.key == "service.name"), "unknown"
            )
            for scope in spans.scope_spans:
                for span in scope.spans:
                    row = {
                        "service": service,
                        "name": span.name,
                        "kind": span.kind,
                        "trace": span.trace_id.hex(),
                        "id": span.span_id.hex(),
                        "parent": span.parent_span_id.hex(),
                        "start": span.start_time_unix_nano,
                        "end": span.end_time_unix_nano,
                    }
                    out.write(json.dumps(row) + "\n")
        out.flush()
        return web.Response(status=200, content_type="application/x-protobuf", body=b"")

    return keep


def main() -> None:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    traces: Handler = keeper(open(sys.argv[2], "a")) if len(sys.argv) > 2 else accept  # noqa: SIM115 - open while serving
    app.router.add_post("/v1/traces", traces)
    app.router.add_post("/v1/metrics", accept)
    app.router.add_post("/v1/logs", accept)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
