# The service's image (docker-compose.yml, service `app`). Three stages:
#   deps   a virtualenv with the dependencies listed in pyproject.toml, installed from that
#          file alone: a change to the code reuses this layer instead of a whole pip install;
#   wheel  the package itself, built from the sources into one wheel;
#   final  the deps virtualenv, then the wheel installed into it from a build mount: no
#          sources, no build/ tree, no wheel and no pip cache stay in the image.
# The build context is what .dockerignore lets through: pyproject.toml, README.md, membership/.
# Base images are pinned to exact versions: bump them on purpose (then rebuild and test).
# Needs BuildKit (RUN --mount), the builder of `docker compose build` and Docker 23+.

FROM python:3.12.12-slim-bookworm AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/membership
WORKDIR /src
COPY pyproject.toml ./
RUN python -c 'import sys, tomllib; sys.stdout.write("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]) + "\n")' > requirements.txt \
    && /opt/membership/bin/pip install -r requirements.txt

FROM deps AS wheel
COPY README.md ./
COPY membership ./membership
RUN /opt/membership/bin/pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.12.12-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/membership/bin:$PATH
COPY --from=deps /opt/membership /opt/membership
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install --no-deps --no-index /wheels/*.whl
# The same account as before (uid 1000), so the app-data volume it owns stays its own.
RUN useradd --create-home membership && mkdir -p /data && chown membership /data
USER membership
ENV MEMBERSHIP_DATA_DIR=/data
# Worker processes (`membership serve --workers`); compose passes MEMBERSHIP_WORKERS on.
ENV MEMBERSHIP_WORKERS=4
EXPOSE 8000
CMD ["membership", "serve", "--host", "0.0.0.0", "--port", "8000"]
