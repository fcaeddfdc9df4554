# One image for the API, the workers and the migration step.
#   CPU (default):  docker build -t crucible:local .
#   CUDA:           docker build -t crucible:cuda \
#                     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#                     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
# Base images are pinned to an exact version (the CUDA one too, in docker-compose.yml), so a
# rebuild gets the same system; production should pin the digest as well
# (python:3.11.13-slim-bookworm@sha256:...) and bump both on purpose. The runtime user is
# `crucible` (uid 10001), never root.
ARG BASE_IMAGE=python:3.11.13-slim-bookworm
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/var/lib/crucible \
    PATH=/opt/venv/bin:$PATH

# CUDA base images ship no Python; the slim Python image does.
RUN if ! command -v python3 >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv \
    && useradd --create-home --uid 10001 crucible \
    && mkdir -p /var/lib/crucible && chown crucible /var/lib/crucible

# The heavy layer first, so code changes do not reinstall torch.
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" torch==2.13.0

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY ml ./ml
COPY store ./store
COPY worker ./worker
COPY api ./api
COPY migrations ./migrations
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" .

USER crucible
EXPOSE 8000
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
