# aistack bot: python -m bot on port 3000 (HTTP mode) or Socket Mode with SLACK_APP_TOKEN.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    AISTACK_DATABASE_URL=sqlite:////data/aistack.db

RUN useradd --create-home --uid 10001 aistack && mkdir /data && chown aistack /data
WORKDIR /app

COPY requirements.lock pyproject.toml README.md ./
RUN pip install -r requirements.lock
COPY bot ./bot
COPY deployer ./deployer
RUN pip install --no-deps .

USER aistack
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status != 200)"
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
