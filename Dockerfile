# The hub for production: an external PostgreSQL (EXCHANGE_DATABASE_URL), several API processes.
# Run `exchange db upgrade` once per release (e.g. as an init container) before starting new pods.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    EXCHANGE_ENV=production \
    EXCHANGE_DATA_DIR=/var/lib/exchange

WORKDIR /opt/exchange
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
COPY catalog ./catalog
RUN pip install . \
    && useradd --system --home-dir /var/lib/exchange --create-home exchange

USER exchange
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"
CMD ["exchange", "serve", "--host", "0.0.0.0", "--port", "8000"]
