# aistack bot: python -m bot, serving on AISTACK_BOT_PORT (HTTP mode, or Socket Mode with
# SLACK_APP_TOKEN). The base is pinned by digest: python:3.11-slim's image index (Python
# 3.11.15, Debian trixie), all platforms. To move it, put the tag's new index digest here.
ARG BASE=python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff

# Build: the runtime dependencies, every file hash-checked, into a virtualenv; then the
# project as a wheel, built by the base image's own setuptools (nothing fetched unchecked).
FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements-runtime.lock ./
RUN python -m venv /opt/aistack \
    && /opt/aistack/bin/pip install --require-hashes -r requirements-runtime.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY deployer ./deployer
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/aistack/bin/pip install --no-deps /wheels/*.whl

# Runtime: the base image and that virtualenv; no sources, no dev tools, no build cache.
FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/aistack/bin:$PATH \
    AISTACK_DATABASE_URL=sqlite:////data/aistack.db AISTACK_BOT_PORT=3000

RUN useradd --create-home --uid 10001 aistack && mkdir /data && chown aistack /data
COPY --from=build /opt/aistack /opt/aistack
WORKDIR /app

USER aistack
VOLUME ["/data"]
EXPOSE 3000
# The port the bot listens on, whatever AISTACK_BOT_PORT is set to at run time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AISTACK_BOT_PORT', '3000'), timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
