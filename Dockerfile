FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY signflow ./signflow
COPY wsgi.py ./
RUN pip install --no-cache-dir '.[prod]'
ENV SIGNFLOW_DATA_DIR=/data SIGNFLOW_KEYS_DIR=/keys
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "wsgi:app"]
