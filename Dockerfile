FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*
# signflow never runs as root: the seal key and the documents belong to this user
RUN useradd --system --create-home --uid 10001 --user-group signflow \
    && mkdir -p /data /keys && chown signflow:signflow /data /keys && chmod 0750 /data /keys
WORKDIR /app
# The dependencies first, in a layer of their own (read from pyproject.toml):
# a change to signflow's code alone then rebuilds in seconds, not minutes.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['prod']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY README.md ./
COPY signflow ./signflow
COPY workflows ./workflows
COPY wsgi.py gunicorn.conf.py ./
RUN pip install --no-cache-dir --no-deps . && pip check
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
