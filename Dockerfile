# mq-service container image.
#
# Build:  podman build -t mq-service .        (or docker build)
# Run:    podman run -e MQ_QUEUE_URL=... -e AWS_REGION=... -p 8080:8080 mq-service
#
# BASE_IMAGE must provide python3 (>= 3.11) with the venv module; the default is the official slim image,
# a base made from Debian bookworm's python3 and python3-venv packages works as well.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY handlers ./handlers
# Build the project's wheel, then install it with the `redis` extra only (the idempotency guard's Redis store):
# the `local` extra (an embedded SQS server) has no place in production.
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-cache-dir "$(ls /wheels/*.whl)[redis]" \
    && /opt/venv/bin/pip uninstall --yes pip \
    && /opt/venv/bin/python -c "import importlib.util as u, service.app.cli; assert u.find_spec('moto') is None"

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="mq-service" \
      org.opencontainers.image.description="Kubernetes-native SQS consumer with an admin API" \
      org.opencontainers.image.licenses="MIT"
# A passwd entry for uid 10001 without useradd, which minimal bases lack.
RUN echo "mq:x:10001:10001:mq-service:/tmp:/usr/sbin/nologin" >> /etc/passwd \
    && echo "mq:x:10001:" >> /etc/group
COPY --from=build /opt/venv /opt/venv
# Nothing is written outside /tmp, so the root filesystem can be mounted read-only.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MQ_ADMIN_HOST=0.0.0.0 \
    MQ_ADMIN_PORT=8080 \
    MQ_LOG_FORMAT=json
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["mq-service"]
CMD ["run"]
