# PartyQuiz game service: `partyquiz-ws` (WebSocket games on 8001 at /ws, plus /healthz,
# /readyz, /metrics). On SIGTERM it drains: /readyz turns 503, clients are told to reconnect,
# and it exits once they are gone or PARTYQUIZ_WS_DRAIN_SECONDS have passed. Also carries
# `partyquiz-bots`, the load/bot client.
#
#   podman build -f Dockerfile.ws -t partyquiz-ws .          (or: make images)
#
# Build arguments: VERSION, REVISION, SOURCE (OCI labels); UV_VERSION (the uv that installs the
# locked dependencies). Optional build secret `build-ca`: a CA bundle for reaching PyPI behind a
# TLS-inspecting proxy (`--secret id=build-ca,src=<bundle>`); used by pip and uv at build time
# only, it never reaches a layer.

# ---- builder: the locked dependencies and this package, in a venv on Debian's python3 ----
FROM debian:bookworm-slim AS builder

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*

ARG UV_VERSION=0.13.9
RUN --mount=type=secret,id=build-ca \
    if [ -s /run/secrets/build-ca ]; then export PIP_CERT=/run/secrets/build-ca; fi \
 && python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

# The venv is built against /usr/bin/python3, the interpreter the runtime stage installs.
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON=/usr/bin/python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_SYSTEM_CERTS=1 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_CACHE_DIR=/var/cache/uv
WORKDIR /src

# Dependencies before code: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/var/cache/uv --mount=type=secret,id=build-ca \
    if [ -s /run/secrets/build-ca ]; then export SSL_CERT_FILE=/run/secrets/build-ca; fi \
 && /opt/uv/bin/uv sync --frozen --no-dev --extra ws --no-install-project

# Only the packages this image runs: core and ws.
COPY services/core/partyquiz_core services/core/partyquiz_core
COPY services/ws/partyquiz_ws services/ws/partyquiz_ws
# No shared cache here: uv would reuse a wheel of this project built by another image's build
# (same path, same pyproject.toml), which holds other packages.
RUN --mount=type=secret,id=build-ca \
    if [ -s /run/secrets/build-ca ]; then export SSL_CERT_FILE=/run/secrets/build-ca; fi \
 && /opt/uv/bin/uv sync --frozen --no-dev --extra ws --no-editable --no-cache \
 && rm -f /opt/venv/bin/partyquiz-web /opt/venv/bin/partyquiz-operator \
 && /opt/venv/bin/python -c "import partyquiz_ws.cli"

# ---- runtime: Debian's python3, the venv, an unprivileged user, nothing else ----
FROM debian:bookworm-slim

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old \
        /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10001 partyquiz \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin partyquiz

COPY --from=builder /opt/venv /opt/venv

# The root filesystem may be read-only: no bytecode is written at run time (the venv is
# compiled at build time) and the only writable places are what the platform mounts (/tmp).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PARTYQUIZ_WS_HOST=0.0.0.0 \
    PARTYQUIZ_WS_PORT=8001
WORKDIR /
USER 10001:10001
EXPOSE 8001

# tini is PID 1: it forwards SIGTERM to the app (which then drains) even while the app is still
# importing, and reaps any orphaned process. Give the platform a stop timeout / grace period
# longer than PARTYQUIZ_WS_DRAIN_SECONDS (default 30 s).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PARTYQUIZ_WS_PORT', '8001') + '/healthz', timeout=2)"]
ENTRYPOINT ["/usr/bin/tini", "--", "partyquiz-ws"]

ARG VERSION=0.0.0+unknown
ARG REVISION=unknown
ARG SOURCE=
LABEL org.opencontainers.image.title="partyquiz-ws" \
      org.opencontainers.image.description="PartyQuiz game service: real-time games over WebSockets" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
