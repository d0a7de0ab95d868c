# A slim image with shardrunner installed; it runs `shardrunner start` (the cluster: issue 4).
# Other commands work too, e.g. `docker run IMAGE sim discord --host 0.0.0.0`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/shardrunner
COPY pyproject.toml README.md ./
COPY shardrunner ./shardrunner
RUN pip install . && useradd --system --no-create-home shardrunner
USER shardrunner
ENTRYPOINT ["shardrunner"]
CMD ["start"]
