# syntax=docker/dockerfile:1.7
# One image for every Cerebrum process: the seven services, the gateway, migrations and the monolith.
#   docker build -t cerebrum:local .
#   docker run --rm -p 8000:8000 cerebrum:local                     # the gateway (the default command)
#   docker run --rm -p 8101:8101 -e PORT=8101 cerebrum:local serve users --host 0.0.0.0
# PORT only tells the HEALTHCHECK where to look; `cerebrum serve <name>` picks the service's own port.

ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

# --- builder: resolve and install the dependencies, then build and install the project's wheel ----------
FROM python:${PYTHON_VERSION}-slim AS builder
# ARGs declared before FROM reach FROM lines only; a stage re-declares those it uses.
ARG PYTHON_VERSION
ARG UV_VERSION
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
RUN pip install "uv==${UV_VERSION}" && uv venv /opt/venv --python /usr/local/bin/python
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so a code change reuses this layer.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip compile pyproject.toml --python-version ${PYTHON_VERSION} -o /tmp/requirements.txt \
    && uv pip install --python /opt/venv/bin/python -r /tmp/requirements.txt

# Then the project itself, as a wheel (no editable install: the runtime stage has no source tree).
COPY README.md ./
COPY cerebrum ./cerebrum
COPY services ./services
COPY observability ./observability
RUN --mount=type=cache,target=/root/.cache/uv \
    uv build --wheel --out-dir /tmp/dist . \
    && uv pip install --python /opt/venv/bin/python --no-deps /tmp/dist/*.whl

# --- runtime: the interpreter, the venv and nothing else; runs as an unprivileged user ------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
LABEL org.opencontainers.image.title="cerebrum" \
      org.opencontainers.image.description="Cerebrum Biology Academy: seven services, the gateway and their tooling"

RUN groupadd --system --gid 10001 cerebrum \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin cerebrum \
    && mkdir -p /app/data \
    && chown -R 10001:10001 /app

COPY --from=builder /opt/venv /opt/venv

# DATA_DIR holds development-only files (a generated JWT key, SQLite in embedded mode); compose shares it as
# a volume, Kubernetes mounts an emptyDir there so the root filesystem can stay read-only.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/app/data \
    PORT=8000
WORKDIR /app
USER 10001:10001

EXPOSE 8000 8101 8102 8103 8104 8105 8106 8107

# Liveness only (/health); readiness (/ready) checks the database, Redis and the broker and belongs to the
# orchestrator. No curl in the slim image, so the interpreter does the request; a non-2xx answer raises.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=2)"]

ENTRYPOINT ["cerebrum"]
# `cerebrum serve` listens on 127.0.0.1 unless told otherwise; in a container it must take outside traffic.
CMD ["serve", "gateway", "--host", "0.0.0.0"]
