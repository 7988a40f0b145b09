# One image for every in-cluster process of kaip: kaip-webhook, kaip-controller, kaip-loader.
# Build: make image (docker build -t ghcr.io/kaip-dev/kaip:v0.1.0 .)
# Pin the base by digest when building a release (PYTHON_IMAGE=python:3.12-slim-bookworm@sha256:...):
# the digest is read from the registry, which the development machine of this repository cannot reach.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY kubectl_plugins kubectl_plugins
COPY webhooks webhooks
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[incluster]'

FROM ${PYTHON_IMAGE}
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'kaip[incluster]' && rm -rf /wheels \
    && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin kaip
USER 65532:65532
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["kaip-webhook"]
