# A slim image with shardrunner installed; it runs `shardrunner start` (give SHARDRUNNER_TOKEN, or
# `docker run IMAGE start --sim` to try it without one). `docker stop` sends SIGTERM: the sessions
# are saved in the run directory; mount a volume at /run/shardrunner to resume them after a restart.
# Several hosts, a standby and a bot over TCP with CURVE, on the simulator (docs/hosts.md):
# `docker compose -f configs/compose-hosts.yml up --build`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    SHARDRUNNER_RUN_DIR=/run/shardrunner
WORKDIR /opt/shardrunner
# tini runs as PID 1: the kernel gives PID 1 no default signal actions, so without it a SIGTERM
# that arrives before the supervisor has installed its handlers (during start-up) would be ignored;
# tini forwards signals and reaps orphans.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY shardrunner ./shardrunner
RUN pip install . && useradd --system --no-create-home shardrunner \
    && mkdir -p /run/shardrunner && chown shardrunner /run/shardrunner
USER shardrunner
# Healthy while the supervisor answers on its control socket (it says at once when it is gone).
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
    CMD ["shardrunner", "status", "--json"]
ENTRYPOINT ["tini", "--", "shardrunner"]
CMD ["start"]
