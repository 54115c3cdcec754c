FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*
# signflow never runs as root: the seal key and the documents belong to this user
RUN useradd --system --create-home --uid 10001 --user-group signflow \
    && mkdir -p /data /keys && chown signflow:signflow /data /keys && chmod 0750 /data /keys
WORKDIR /app
COPY pyproject.toml README.md ./
COPY signflow ./signflow
COPY workflows ./workflows
COPY wsgi.py gunicorn.conf.py ./
RUN pip install --no-cache-dir '.[prod]'
ENV SIGNFLOW_DATA_DIR=/data SIGNFLOW_KEYS_DIR=/keys SIGNFLOW_WORKFLOWS_DIR=/app/workflows \
    PYTHONUNBUFFERED=1
USER signflow
EXPOSE 8000
# wsgi:app is production: no development mode, JSON logs, and a start that refuses
# (one line naming the missing settings) when BankID, TSA, SMTP or the seal are not set
# Threads (gthread): a verification waits on its sandboxed child, not on the CPU, and
# takes at most SIGNFLOW_VERIFY_CONCURRENCY (2) of a process's 8 threads, so health
# checks and everyone else always find a free one (README, Production)
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "8", "wsgi:app"]
