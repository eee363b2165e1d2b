"""Gateway overhead: the same requests straight to the service, through our gateway, and through nginx.

nginx (Debian's package) is the reference proxy: one worker, upstream keep-alive, access log off,
pinned to the server core like the gateway, the service and everything else the platform runs.
Added latency is measured unloaded (one connection, so no queueing), throughput at 16 connections;
the gateway process's own CPU per request is read at both (the kernel's clock of it, over each run).

Every request says ``Cache-Control: no-cache``, so that the gateway forwards each one, as nginx
does: the comparison is proxy against proxy. What the gateway's copies of a read add on top
(services/gateway/edge.py) is measured apart, on the same read without the header.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psutil

from bench import profile
from bench.harness import OUT, Running, WrkResult, apt_install, cpu_seconds, free_port, start, stop, wait_ready, wrk
from bench.platforms import Distributed

SECONDS = int(os.environ.get("BENCH_GATEWAY_SECONDS", "4"))
LATENCY_SECONDS = int(os.environ.get("BENCH_GATEWAY_LATENCY_SECONDS", "3"))
ADDED_P50_MS = 1.0
RATIO_TO_NGINX = 0.70
PROFILE = '{"full_name": "Bench Student", "city": "Pune"}'
FORWARDED = {"Cache-Control": "no-cache"}
"""Asks the gateway to answer from the service, not from its copy (RFC 9111 5.2.1.4)."""
_CONF = """daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
{upstreams}
  server {{
    listen 127.0.0.1:{port};
{locations}
  }}
}}
"""


def nginx_conf(port: int, upstreams: dict[str, str]) -> str:
    """A reverse proxy at /api/<prefix>/ → each service, as our gateway routes, with upstream keep-alive."""
    prefix = (OUT / "nginx").resolve()
    blocks, locations = [], []
    for path_prefix, url in upstreams.items():
        name = path_prefix.replace("/", "_")
        blocks.append(f"  upstream {name} {{ server {url.removeprefix('http://')}; keepalive 64; }}")
        locations.append(
            f"    location /api/{path_prefix}/ {{\n"
            f"      proxy_pass http://{name}/{path_prefix}/;\n"
            "      proxy_http_version 1.1;\n"
            '      proxy_set_header Connection "";\n'
            "      proxy_set_header Host $host;\n"
            "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
            "    }"
        )
    return _CONF.format(prefix=prefix, port=port, upstreams="\n".join(blocks), locations="\n".join(locations))


@contextmanager
def nginx(upstreams: dict[str, str]) -> Iterator[Running]:
    """Runs nginx in the foreground as a child, configured under bench/out/nginx, on the server core."""
    binary = apt_install("nginx", "nginx")
    prefix = (OUT / "nginx").resolve()
    for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / folder).mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(port, upstreams))
    argv = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    running = start("nginx", argv, {}, port)
    try:
        wait_ready(running.url, "/api/courses/", running.process, timeout=20, name="nginx")
        yield running
    finally:
        stop(running)


def _side(results: list[WrkResult]) -> dict[str, Any]:
    return {
        "requests_per_s": round(statistics.median(r.requests_per_s for r in results), 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in results), 3),
        "p99_ms": round(statistics.median(r.p99_ms for r in results), 3),
        "non_2xx": sum(r.non_2xx for r in results),
        "command": results[0].command,
    }


def run(platform: Distributed) -> dict[str, Any]:
    """Each request direct, through the gateway and through nginx: unloaded p50 and loaded throughput."""
    student = platform.student
    requests = {
        "courses GET /courses/{id}": ("courses", f"/courses/{student.course_id}", "GET", None),
        "users PUT /users/profile": ("users", "/users/profile", "PUT", PROFILE),
    }
    upstreams = {name: platform.services[name].url for name in ("courses", "users")}
    gateway = psutil.Process(platform.gateway.pid)
    rows: list[dict[str, Any]] = []
    where: dict[str, Any] | None = None
    with nginx(upstreams) as proxy:
        for scenario, (service, path, method, body) in requests.items():
            routes = {
                "direct": platform.services[service].url + path,
                "gateway": platform.gateway.url + "/api" + path,
                "nginx": proxy.url + "/api" + path,
            }
            latency: dict[str, WrkResult] = {}
            loaded: dict[str, WrkResult] = {}
            cpu: dict[str, dict[str, int]] = {}
            common: dict[str, Any] = {"headers": student.auth | FORWARDED, "method": method, "body": body}
            kept: dict[str, Any] = {**common, "headers": student.auth}
            sides = [(side, url, common) for side, url in routes.items()]
            if method == "GET":  # the same read without no-cache: answered from the gateway's copy
                sides.append(("copy", routes["gateway"], kept))
            for side, url, options in sides:
                print(f"bench: gateway overhead — {scenario} via {side}…", flush=True)
                wrk(url, seconds=1, record=False, **options)  # warm-up: connections, pools, the copy kept
                with _gateway_cpu(gateway) as one:
                    latency[side] = wrk(url, seconds=LATENCY_SECONDS, connections=1, **options)
                with _gateway_cpu(gateway) as sixteen:
                    loaded[side] = wrk(url, seconds=SECONDS, connections=16, **options)
                if side in ("gateway", "copy"):
                    cpu[side] = {
                        "1": round(one.seconds * 1e6 / max(latency[side].requests, 1)),
                        "16": round(sixteen.seconds * 1e6 / max(loaded[side].requests, 1)),
                    }
            if where is None:
                print(f"bench: profiling the gateway under {scenario} with py-spy…", flush=True)
                with profile.recording("gateway", platform.gateway.pid, SECONDS) as recorded:
                    wrk(routes["gateway"], seconds=SECONDS + 1, connections=16, record=False, **common)
                where = {"scenario": scenario, **recorded.summary}
            rows.append(_compare(scenario, latency, loaded) | {"gateway_cpu_us": cpu})
    return {"seconds": SECONDS, "latency_seconds": LATENCY_SECONDS, "rows": rows, "where_the_time_goes": where}


@dataclass
class _Spent:
    seconds: float = 0.0


@contextmanager
def _gateway_cpu(process: psutil.Process) -> Iterator[_Spent]:
    """The gateway process's CPU seconds over the block (the kernel's clock of it)."""
    spent, before = _Spent(), cpu_seconds(process)
    yield spent
    spent.seconds = cpu_seconds(process) - before


def _compare(scenario: str, latency: dict[str, WrkResult], loaded: dict[str, WrkResult]) -> dict[str, Any]:
    added = {side: latency[side].p50_ms - latency["direct"].p50_ms for side in latency if side != "direct"}
    ratio = loaded["gateway"].requests_per_s / loaded["nginx"].requests_per_s
    row: dict[str, Any] = {
        "scenario": scenario,
        "unloaded": {side: _side([result]) for side, result in latency.items()},
        "loaded": {side: _side([result]) for side, result in loaded.items()},
        "gateway_added_p50_ms": round(added["gateway"], 3),
        "nginx_added_p50_ms": round(added["nginx"], 3),
        "gateway_to_nginx_throughput": round(ratio, 3),
        "gateway_to_direct_throughput": round(loaded["gateway"].requests_per_s / loaded["direct"].requests_per_s, 3),
        "latency_met": added["gateway"] < ADDED_P50_MS,
        "from_copy": (
            {
                "requests_per_s": loaded["copy"].requests_per_s,
                "added_p50_ms": round(added["copy"], 3),
                "to_nginx_throughput": round(loaded["copy"].requests_per_s / loaded["nginx"].requests_per_s, 3),
            }
            if "copy" in loaded
            else None
        ),
        "throughput_met": ratio >= RATIO_TO_NGINX,
    }
    misses = []
    if not row["latency_met"]:
        misses.append(f"adds {added['gateway']:.2f} ms at p50, {added['gateway'] - ADDED_P50_MS:.2f} ms over 1 ms")
    if not row["throughput_met"]:
        misses.append(f"{ratio:.0%} of nginx's throughput, {(1 - ratio / RATIO_TO_NGINX):.0%} short of 70%")
    row["miss"] = "; ".join(misses) or None
    return row
