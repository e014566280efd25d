# One image for every `capi` process: webhook app (serve), worker, migrate, tools.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package needs: the build context may hold a virtualenv and local data.
COPY pyproject.toml constraints.txt README.md ./
COPY capi_stream ./capi_stream
COPY producers ./producers
COPY consumers ./consumers
COPY storage ./storage
COPY meta_capi ./meta_capi
COPY schemas ./schemas

# The Avro schemas ship inside the package (`schemas` is package data).
RUN pip install -c constraints.txt . \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin capi \
    && rm -rf /src

WORKDIR /app
USER 10001
# Containers listen on every interface; the app on 8080, a worker's health/metrics on 9108.
ENV HTTP_HOST=0.0.0.0 \
    DATA_DIR=/tmp/capi
EXPOSE 8080 9108
ENTRYPOINT ["capi"]
CMD ["serve"]
