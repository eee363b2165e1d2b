"""Lesson files: raw-body uploads to content storage, downloads, and the S3 adapter's signing."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from services.courses.app import create_app
from services.courses.storage import EMPTY_SHA256, S3Storage, sigv4_authorization
from services.kit.errors import DependencyUnavailable
from tests.apps import running
from tests.conftest import free_port
from tests.services.courses.conftest import PROBLEM, CoursesApi, enrolment_event, pg_settings


async def _lesson_url(api: CoursesApi, **course: Any) -> str:
    created = await api.create(**course)
    return f"/courses/{created['id']}/lessons/{created['lessons'][0]['id']}/files"


@pytest.mark.integration
async def test_upload_then_download_a_lesson_file(courses: CoursesApi, tmp_path: Path) -> None:
    url = await _lesson_url(courses)
    data = b"%PDF-1.7 Mendel's laws, worked examples"
    headers = {**courses.admin, "Content-Type": "application/pdf", "X-Filename": "..%2Fnotes%2Fmendel%20laws.pdf"}
    uploaded = await courses.client.post(url, content=data, headers=headers)
    assert uploaded.status_code == 201, uploaded.text
    meta = uploaded.json()
    assert meta["filename"] == "mendel laws.pdf", "the name loses any path"
    assert meta["size_bytes"] == len(data) and meta["sha256"] == hashlib.sha256(data).hexdigest()
    stored = list((tmp_path / "content").rglob("*"))
    assert any(p.is_file() and p.read_bytes() == data for p in stored)

    refused = await courses.client.get(f"{url}/{meta['id']}", headers=courses.student)
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM, "not enrolled yet"
    course_id = url.split("/")[2]
    confirmed = enrolment_event(
        "enrollment.confirmed", enrollment_id=uuid.uuid4(), user_id=courses.student_id, course_id=course_id
    )
    await courses.deliver(confirmed)
    download = await courses.client.get(f"{url}/{meta['id']}", headers=courses.student)
    assert download.status_code == 200 and download.content == data
    assert download.headers["content-type"] == "application/pdf"
    assert "mendel%20laws.pdf" in download.headers["content-disposition"]
    assert (await courses.client.get(f"{url}/{meta['id']}")).status_code == 401
    assert (await courses.client.get(f"{url}/{uuid.uuid4()}", headers=courses.student)).status_code == 404


@pytest.mark.integration
async def test_bad_uploads_get_a_problem_and_store_nothing(pg_schema: str, redis_prefix: str, tmp_path: Path) -> None:
    settings = pg_settings(pg_schema, redis_prefix, tmp_path, max_upload_bytes=1024)
    app = create_app(settings)
    async with running(app) as client:
        api = CoursesApi(client, app, settings)
        url = await _lesson_url(api)
        admin = api.admin
        cases = [
            (b"bytes", {**admin, "Content-Type": "text/plain"}, 422),
            (b"bytes", {**admin, "Content-Type": "text/plain", "X-Filename": "../.."}, 422),
            (b"", {**admin, "Content-Type": "text/plain", "X-Filename": "a.txt"}, 422),
            (b"--x", {**admin, "Content-Type": "multipart/form-data; boundary=x", "X-Filename": "a.txt"}, 422),
            (b"x" * 1025, {**admin, "Content-Type": "text/plain", "X-Filename": "big.txt"}, 413),
        ]
        for body, headers, status in cases:
            response = await client.post(url, content=body, headers=headers)
            assert response.status_code == status, (headers, response.text)
            assert response.headers["content-type"] == PROBLEM
        missing = f"/courses/{uuid.uuid4()}/lessons/{uuid.uuid4()}/files"
        unknown = await client.post(missing, content=b"x", headers={**admin, "X-Filename": "a.txt"})
        assert unknown.status_code == 404
    assert not (tmp_path / "content").exists()


def test_sigv4_matches_the_aws_documented_example() -> None:
    authorization = sigv4_authorization(
        method="GET",
        path="/test.txt",
        query="",
        headers={
            "Host": "examplebucket.s3.amazonaws.com",
            "Range": "bytes=0-9",
            "x-amz-content-sha256": EMPTY_SHA256,
            "x-amz-date": "20130524T000000Z",
        },
        payload_sha256=EMPTY_SHA256,
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        at=datetime(2013, 5, 24, tzinfo=UTC),
    )
    assert authorization == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_s3_urls_are_read_or_refused_clearly() -> None:
    s3 = S3Storage.from_url("s3+https://AKIA:se%2Fcret@s3.ap-south-1.amazonaws.com/cerebrum?region=ap-south-1")
    assert (s3.endpoint, s3.bucket, s3.secret_key, s3.region) == (
        "https://s3.ap-south-1.amazonaws.com",
        "cerebrum",
        "se/cret",
        "ap-south-1",
    )
    for bad in ("https://s3.amazonaws.com/bucket", "s3+https://s3.amazonaws.com/bucket", "s3+https://k:s@host/"):
        with pytest.raises(ValueError, match="CONTENT_STORAGE_URL"):
            S3Storage.from_url(bad)


@pytest.fixture
async def fake_s3() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    """A tiny S3 stand-in that checks each request's SigV4 signature and keeps objects in memory."""
    objects: dict[str, bytes] = {}

    async def handle(request: web.BaseRequest) -> web.Response:
        body = await request.read()
        signed = {name: request.headers[name] for name in ("host", "x-amz-content-sha256", "x-amz-date")}
        if "content-type" in request.headers and request.method == "PUT":
            signed["content-type"] = request.headers["content-type"]
        expected = sigv4_authorization(
            method=request.method,
            path=request.raw_path,
            query="",
            headers=signed,
            payload_sha256=hashlib.sha256(body).hexdigest(),
            access_key="AKIA",
            secret_key="secret",
            region="ap-south-1",
            at=datetime.strptime(request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC),
        )
        if request.headers.get("authorization") != expected:
            return web.Response(status=403)
        if request.method == "PUT":
            objects[request.path] = body
            return web.Response(status=200)
        return web.Response(body=objects[request.path]) if request.path in objects else web.Response(status=404)

    server = web.Server(handle)
    runner = web.ServerRunner(server)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"s3+http://AKIA:secret@127.0.0.1:{port}/cerebrum?region=ap-south-1", objects
    finally:
        await runner.cleanup()


async def test_s3_storage_puts_and_gets_signed_objects(fake_s3: tuple[str, dict[str, bytes]]) -> None:
    url, objects = fake_s3
    storage = S3Storage.from_url(url)
    await storage.put("courses/c/lessons/l/f", b"slides", content_type="application/pdf")
    assert objects == {"/cerebrum/courses/c/lessons/l/f": b"slides"}
    assert await storage.get("courses/c/lessons/l/f") == b"slides"
    wrong = S3Storage.from_url(url.replace("secret@", "wrong@"))
    with pytest.raises(DependencyUnavailable, match="object storage answered 403"):
        await wrong.get("courses/c/lessons/l/f")
