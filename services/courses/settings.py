from __future__ import annotations

from pydantic import Field, SecretStr

from services.kit.settings import ServiceSettings


class CoursesSettings(ServiceSettings):
    """The courses service: catalogue, curriculum, content files, search and seats."""

    service_name: str = "courses"
    cache_ttl_seconds: int = Field(default=300, ge=1)
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    # Unset: lesson files live under data_dir/content. Set to an S3-compatible bucket, e.g.
    # s3+https://ACCESS_KEY:SECRET_KEY@s3.ap-south-1.amazonaws.com/cerebrum-content?region=ap-south-1
    content_storage_url: SecretStr | None = None
