# syntax=docker/dockerfile:1
# The image deploy/k8s runs (`image: waimai`): build with `docker build -t waimai .`
# Stage 1 builds a virtualenv from the runtime lock alone (hashed; the dev, bench and drill extras live in
# requirements-dev.lock and never reach the image), then adds the package without resolving anything more;
# stage 2 is a slim runtime with the PostgreSQL client tools that backups need (pg_dump, pg_restore, psql),
# running as the non-root user the Kubernetes manifests expect (runAsUser 10001).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/waimai
COPY requirements.lock /tmp/requirements.lock
RUN /opt/waimai/bin/pip install --require-hashes -r /tmp/requirements.lock
COPY pyproject.toml README.md /src/
COPY waimai /src/waimai
RUN /opt/waimai/bin/pip install --no-deps /src

FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client zstd tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 waimai \
 && useradd --uid 10001 --gid 10001 --home-dir /srv/waimai --create-home --shell /usr/sbin/nologin waimai
COPY --from=build /opt/waimai /opt/waimai
ENV PATH=/opt/waimai/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WAIMAI_ENV=production \
    WAIMAI_HOST=0.0.0.0 \
    WAIMAI_PORT=8000
WORKDIR /srv/waimai
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["tini", "--"]
CMD ["waimai", "serve"]
