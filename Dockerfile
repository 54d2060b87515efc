# The serving image: the forecast API and one model bundle; nothing from training (no pandas,
# DVC, evidently or scikit-learn). Build it after the pipeline has run (`make run`):
#   make image                            # docker build; CONTAINER=podman make image works too
#   docker run --rm -p 8000:8000 demandcast-api
# BASE_IMAGE: any Debian-like image with python3 (3.11+) and its venv module; by default the
# stage below, python:3.11-slim pinned by digest, so every build (CI's included) starts from the
# same bytes. The digest is on a FROM line of its own because Dependabot (.github/dependabot.yml)
# reads FROM lines, not ARGs: it proposes the new digest when the tag moves.
ARG BASE_IMAGE=python-pinned

FROM python:3.11-slim@sha256:74132ced0002947303bc75654c7d51d3818435fe1c0ec6e4d84f7ca4d0849878 AS python-pinned

FROM ${BASE_IMAGE} AS build
# PIP_CERT: a CA bundle for pip behind a TLS-inspecting proxy (empty: the system's).
ARG PIP_CERT=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements/serve.lock requirements/
RUN [ -n "${PIP_CERT}" ] || unset PIP_CERT; \
    python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-compile -r requirements/serve.lock
COPY pyproject.toml README.md ./
COPY src/ src/
# The package without its training dependencies; then slim the venv: no pip, no test suites,
# and only the part of scipy that xgboost imports (scipy.sparse, scipy.special): ~80 MB less.
RUN [ -n "${PIP_CERT}" ] || unset PIP_CERT; \
    /opt/venv/bin/pip install --no-cache-dir --no-compile --no-deps . \
    && /opt/venv/bin/pip uninstall --yes pip setuptools \
    && find /opt/venv -depth -type d -name tests -exec rm -rf {} + \
    && scipy="$(echo /opt/venv/lib/python3*/site-packages/scipy)" \
    && for unused in cluster constants datasets differentiate fft fftpack integrate interpolate \
        io linalg misc ndimage odr optimize signal spatial stats sparse/csgraph sparse/linalg; \
       do rm -r "${scipy:?}/${unused}"; done
# Prove the slimmed venv serves the bundle; this also writes the bytecode of every module that
# serving imports (the non-root user cannot write it at run time).
COPY models/serving/ models/serving/
RUN /opt/venv/bin/python -c "import demandcast.api.app; from demandcast.api.store import load; \
print('serves', load('models/serving').version)"

FROM ${BASE_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin demandcast
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY models/serving/ models/serving/
COPY reports/metrics.json reports/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DEMANDCAST_HOST=0.0.0.0 \
    PORT=8000
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["python", "-m", "demandcast.api"]
# OCI labels, last so that a new commit rebuilds no layer. SOURCE_URL also links a GHCR package
# to its repository (its page, and the workflow's access to it). make image passes REVISION;
# scripts/deploy.sh passes MODEL_VERSION and SOURCE_URL.
ARG REVISION="" MODEL_VERSION="" SOURCE_URL=""
LABEL org.opencontainers.image.title="demandcast-api" \
      org.opencontainers.image.description="demandcast forecast API serving one model bundle" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${MODEL_VERSION}"
