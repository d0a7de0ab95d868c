# A slim image with shardrunner installed; it runs `shardrunner start` (give SHARDRUNNER_TOKEN, or
# `docker run IMAGE start --sim` to try it without one). `docker stop` sends SIGTERM: the sessions
# are saved in the run directory; mount a volume at /run/shardrunner to resume them after a restart.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    SHARDRUNNER_RUN_DIR=/run/shardrunner
WORKDIR /opt/shardrunner
COPY pyproject.toml README.md ./
COPY shardrunner ./shardrunner
RUN pip install . && useradd --system --no-create-home shardrunner \
    && mkdir -p /run/shardrunner && chown shardrunner /run/shardrunner
USER shardrunner
ENTRYPOINT ["shardrunner"]
CMD ["start"]
