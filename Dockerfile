# hush service image: CPU-only torch, weights baked in (package data), non-root, health-checked.
#   docker build -t hush .
#   docker run -p 8000:8000 -e HUSH_API_KEYS=change-me hush
# Settings are HUSH_* environment variables (see service/settings.py and docs/deploy.md).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/hush
ENV PATH=/opt/hush/bin:$PATH
# CPU-only torch first: the default index would pull a multi-GB CUDA build.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY . /src
# A regular (non-editable) install copies models/weights/ into the package: the image
# carries its weights and needs nothing from outside at run time.
RUN pip install --no-cache-dir /src

FROM python:3.11-slim
# NUMBA_CACHE_DIR: the int8 step's compiled kernel is cached in /tmp (writable even with a
# read-only root filesystem, as deploy/k8s mounts it), not in the read-only site-packages.
ENV PATH=/opt/hush/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUMBA_CACHE_DIR=/tmp/numba \
    HUSH_LOG_LEVEL=info
RUN useradd --create-home --uid 10001 --user-group hush
COPY --from=build /opt/hush /opt/hush
USER 10001:10001
WORKDIR /home/hush
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["hush", "serve", "--host", "0.0.0.0", "--port", "8000"]
