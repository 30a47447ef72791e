# The greenkfp component image: every component's base_image (see components/_runtime.py).
# Build and push with the library version as the tag, for example:
#   docker build -t ghcr.io/greenkfp/greenkfp:0.1.0 . && docker push ghcr.io/greenkfp/greenkfp:0.1.0
# Components then start with everything installed (install_kfp_package=False).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/greenkfp
COPY pyproject.toml README.md LICENSE NOTICE ./
COPY components ./components
COPY pipelines ./pipelines
# gcs: datasets given as gs:// URIs (GKE and Vertex AI); add s3 or azure for those stores.
RUN pip install ".[gcs]" && rm -rf /opt/greenkfp/build \
    && python -c "import greenkfp.components.carbon as c; c.embedded_zones()"

# KFP runs components as `sh -ec ...`: no entrypoint of our own.
WORKDIR /
