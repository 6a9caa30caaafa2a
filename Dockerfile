# finout-mcp in a container: the wheel, installed into a virtualenv on a slim Python, run as a
# non-root user. stdio by default (a client runs `docker run -i --rm ... finout-mcp`); HTTP by flag:
#   docker run -p 8000:8000 -e FINOUT_MCP_AUTH_TOKEN=... finout-mcp \
#     --transport streamable-http --host 0.0.0.0 --port 8000
# Build: docker build -t finout-mcp .   (PYTHON_IMAGE may name any Debian-based Python >= 3.11)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY finout_mcp ./finout_mcp
RUN python3 -m venv /tmp/build \
 && /tmp/build/bin/pip install --no-cache-dir --disable-pip-version-check -q build \
 && /tmp/build/bin/python -m build --wheel --outdir /dist .

FROM ${PYTHON_IMAGE}
# `postgres`: the driver a team server needs for FINOUT_MCP_DATABASE_URL (see compose.yaml).
ARG EXTRAS=postgres
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/finout-mcp/bin:$PATH \
    FINOUT_MCP_STATE_DIR=/var/lib/finout-mcp
COPY --from=wheel /dist/ /tmp/dist/
COPY deploy/healthcheck.py /opt/finout-mcp-healthcheck.py
RUN python3 -m venv /opt/finout-mcp \
 && wheel="$(ls /tmp/dist/finout_mcp-*.whl)" \
 && /opt/finout-mcp/bin/pip install --no-cache-dir --disable-pip-version-check -q "${wheel}${EXTRAS:+[$EXTRAS]}" \
 && rm -rf /tmp/dist \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/finout-mcp --create-home finout \
 && finout-mcp --version
USER finout
WORKDIR /var/lib/finout-mcp
VOLUME ["/var/lib/finout-mcp"]
EXPOSE 8000
# HTTP mode only: stdio has nothing to probe, so the check passes there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "/opt/finout-mcp-healthcheck.py"]
ENTRYPOINT ["finout-mcp"]
