# syntax=docker/dockerfile:1
# One image for every role: `fte api`, `fte worker`, `fte mcp`, `fte db migrate`,
# `fte digest`, `fte gmail watch` (Kubernetes picks the role with `args`).
#
# The base is python:3.12-slim pinned by its multi-arch index digest (the digest was taken
# offline from public build records, not from the registry: re-resolve it with
# `docker buildx imagetools inspect python:3.12-slim` when bumping, in both stages).

# ---- builder: compilers, the locked dependencies, the project, the embedding model ----
FROM python:3.12-slim@sha256:2fe5997d249a808b8eeea52c58a1dbffbba28754dc11699ef5c029f2d818ce79 AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# durable-rules ships as source only: it needs a C/C++ toolchain, in this stage alone.
# The toolchain follows the pinned base image's Debian release (it never reaches the
# runtime stage), so its package versions are not pinned separately.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ make \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY fte_core ./fte_core
COPY adapters ./adapters
COPY service ./service
# the project itself, against the locked set: --no-deps, then a consistency check
RUN pip install --no-deps . && pip check
# all-MiniLM-L6-v2, fetched, checksum-verified and converted to ONNX at build time
RUN fte model install --dir /opt/fte/models

# ---- runtime: no compilers, no caches, no bytecode, a non-root user ----
FROM python:3.12-slim@sha256:2fe5997d249a808b8eeea52c58a1dbffbba28754dc11699ef5c029f2d818ce79 AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="fte" \
      org.opencontainers.image.description="Customer Success Digital FTE: api, worker, mcp, migrations, digest" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Proprietary" \
      org.opencontainers.image.base.name="docker.io/library/python:3.12-slim"
RUN groupadd --system --gid 10001 fte \
    && useradd --system --uid 10001 --gid fte --home-dir /var/lib/fte --no-create-home \
       --shell /usr/sbin/nologin fte \
    && install -d -o fte -g fte -m 0700 /var/lib/fte
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/fte/models /opt/fte/models
COPY rules /opt/fte/rules
COPY context /opt/fte/context
# Everything the service writes goes under /var/lib/fte (mount a volume there) and /tmp:
# the root file system can be read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    HOME=/var/lib/fte \
    FTE_DATA_DIR=/var/lib/fte \
    FTE_RULES_DIR=/opt/fte/rules \
    FTE_CONTEXT_DIR=/opt/fte/context \
    FTE_MODEL_DIR=/opt/fte/models \
    FTE_HOST=0.0.0.0 \
    FTE_PORT=8000
VOLUME ["/var/lib/fte"]
WORKDIR /var/lib/fte
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# Kubernetes uses its own probes; this serves `docker run` (api role, or a worker with
# FTE_PROBE_PORT pointing at the same port)
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('FTE_PROBE_PORT', os.environ['FTE_PORT']) + '/api/v1/health', timeout=2)"]
ENTRYPOINT ["fte"]
CMD ["api"]
