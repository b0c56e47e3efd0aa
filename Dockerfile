# syntax=docker/dockerfile:1
# The LGSP image: every component (services, national mocks, console) in one image; a
# container runs one of them (`lgsp run NAME`) or all (`lgsp up`). docs/operations.md,
# "Scale-out with containers", builds and runs it with infra/docker-compose.scale-out.yml.
#
#   docker build -t lgsp:0.1.0 .
#
# Stage 1 builds the virtual environment from requirements.lock with uv: only the runtime
# subset of the lock (pyproject's dependencies and the keycloak extra, at the lock's exact
# versions; no test tools or test servers), then the repository itself, installed editable at
# /opt/lgsp exactly as `make setup` installs it (the packages find their migrations, templates
# and fonts beside their code). Stage 2 copies /opt/lgsp into a clean slim image and runs it
# as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The uv the Makefile pins.
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /opt/lgsp
COPY pyproject.toml requirements.lock README.md ./
RUN uv pip compile pyproject.toml --extra keycloak --constraint requirements.lock \
        --python-version 3.11 --no-header --quiet -o /tmp/runtime.lock \
 && uv venv --quiet --python /usr/local/bin/python3.11 /opt/lgsp/.venv \
 && uv pip sync --quiet --python /opt/lgsp/.venv/bin/python /tmp/runtime.lock
COPY lgsp ./lgsp
COPY services ./services
COPY national ./national
COPY console ./console
COPY infra/lgsp.example.toml ./infra/lgsp.example.toml
RUN uv pip install --quiet --python /opt/lgsp/.venv/bin/python --no-deps -e . \
 && /opt/lgsp/.venv/bin/python -m compileall -q lgsp services national console

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="lgsp" \
      org.opencontainers.image.description="LGSP provincial e-government platform"
RUN groupadd --system --gid 10001 lgsp \
 && useradd --system --uid 10001 --gid lgsp --home-dir /var/lib/lgsp --no-create-home \
        --shell /usr/sbin/nologin lgsp \
 && install -d -o lgsp -g lgsp -m 0750 /var/lib/lgsp
COPY --from=build /opt/lgsp /opt/lgsp
ENV PATH=/opt/lgsp/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LGSP_PLATFORM_HOST=0.0.0.0 \
    LGSP_PLATFORM_DATA_DIR=/var/lib/lgsp \
    LGSP_PLATFORM_LOG_FORMAT=json
USER lgsp
WORKDIR /var/lib/lgsp
VOLUME ["/var/lib/lgsp"]
# Every socket of the component(s) PID 1 runs accepts connections; gRPC ones answer SERVING.
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "lgsp.healthcheck"]
ENTRYPOINT ["lgsp"]
CMD ["up"]
