"""Where lesson files' bytes live: a local folder, or an S3-compatible bucket (AWS S3, R2, MinIO)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit

import aiohttp

from services.courses.settings import CoursesSettings
from services.kit.errors import DependencyUnavailable, NotFound

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class ContentStorage(Protocol):
    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        """Stores bytes under a key, replacing what was there."""
        ...

    async def get(self, key: str) -> bytes:
        """Reads the bytes stored under a key."""
        ...


def _checked(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class LocalStorage:
    """Files under a folder (embedded mode and development)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _checked(key)

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise NotFound("The file's content is missing from storage") from exc

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, path)  # readers see the old file or the whole new one, never half


def sigv4_authorization(
    *,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    payload_sha256: str,
    access_key: str,
    secret_key: str,
    region: str,
    at: datetime,
    service: str = "s3",
) -> str:
    """The ``Authorization`` header of AWS Signature Version 4 for a request with these headers."""
    day = at.strftime("%Y%m%d")
    lowered = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    names = sorted(lowered)
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in names)
    signed = ";".join(names)
    canonical = "\n".join([method, path, query, canonical_headers, signed, payload_sha256])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", at.strftime("%Y%m%dT%H%M%SZ"), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    signing_key = f"AWS4{secret_key}".encode()
    for part in (day, region, service, "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"AWS4-HMAC-SHA256 Credential={access_key}/{scope},SignedHeaders={signed},Signature={signature}"


@dataclass(frozen=True)
class S3Storage:
    """An S3-compatible bucket, path-style, signed with SigV4 (no SDK needed for PUT and GET)."""

    endpoint: str
    host: str
    bucket: str
    access_key: str
    secret_key: str
    region: str
    timeout_seconds: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> S3Storage:
        """Reads ``s3+https://ACCESS_KEY:SECRET_KEY@host[:port]/bucket?region=...`` (or ``s3+http``)."""
        parts = urlsplit(url)
        scheme = parts.scheme.removeprefix("s3+")
        bucket = parts.path.strip("/")
        if scheme not in ("http", "https") or not parts.hostname or not bucket or "/" in bucket:
            raise ValueError("CONTENT_STORAGE_URL must look like s3+https://KEY:SECRET@host/bucket?region=...")
        if not parts.username or not parts.password:
            raise ValueError("CONTENT_STORAGE_URL carries no access key and secret (KEY:SECRET@host)")
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        region = parse_qs(parts.query).get("region", ["us-east-1"])[0]
        return cls(
            endpoint=f"{scheme}://{host}",
            host=host,
            bucket=bucket,
            access_key=unquote(parts.username),
            secret_key=unquote(parts.password),
            region=region,
        )

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        await self._send("PUT", key, data, {"content-type": content_type})

    async def get(self, key: str) -> bytes:
        return await self._send("GET", key, b"", {})

    async def _send(self, method: str, key: str, body: bytes, extra: dict[str, str]) -> bytes:
        path = "/" + quote(f"{self.bucket}/{_checked(key)}", safe="/-_.~")
        payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        now = datetime.now(UTC)
        headers = {"host": self.host, "x-amz-content-sha256": payload, "x-amz-date": now.strftime("%Y%m%dT%H%M%SZ")}
        headers.update(extra)
        headers["authorization"] = sigv4_authorization(
            method=method,
            path=path,
            query="",
            headers=headers,
            payload_sha256=payload,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            at=now,
        )
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_seconds)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.request(method, self.endpoint + path, data=body or None, headers=headers) as reply:
                    content = await reply.read()
                    status = reply.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DependencyUnavailable("object storage") from exc
        if status == 404 and method == "GET":
            raise NotFound("The file's content is missing from storage")
        if status >= 300:
            raise DependencyUnavailable("object storage", f"object storage answered {status} to {method}")
        return content


def build_storage(settings: CoursesSettings) -> ContentStorage:
    """The bucket named by CONTENT_STORAGE_URL, or a folder under the data folder."""
    if settings.content_storage_url is not None:
        return S3Storage.from_url(settings.content_storage_url.get_secret_value())
    return LocalStorage(Path(settings.data_dir) / "content")
