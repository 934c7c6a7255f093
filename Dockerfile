# syntax=docker/dockerfile:1
# Bazaar's one image: web (gunicorn, the pages), websockets (uvicorn, /ws/), task workers,
# the event dispatcher and migrations, the process chosen at run time
# (scripts/container-entrypoint.sh):
#
#   docker build -t bazaar:1.0.0 .
#   docker run bazaar:1.0.0 web | websockets | worker critical | dispatcher | migrate | manage <command>
#
# See docs/deployment.md. CI lints this file (hadolint) but cannot build it: no Docker
# daemon runs there. The dependencies are installed by scripts/make-venv.sh, the same
# script CI's `make install` runs.

ARG PYTHON_IMAGE=python:3.13-slim-trixie

# --- builder: the virtualenv, with compilers at hand ---------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# The compilers are here for a dependency without a wheel for the build platform, and stay
# in this stage. Not pinned (DL3008): Debian
# replaces a package's version on every security update, so a pin breaks the build within
# weeks; the base image tag fixes the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY pyproject.toml ./
COPY scripts/make-venv.sh scripts/
RUN PYTHON=python3 scripts/make-venv.sh /opt/venv production

# --- runtime: no compilers, no build tree, not root ----------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=project.settings \
    BAZAAR_VAR_DIR=/var/lib/bazaar
# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 bazaar \
    && useradd --system --uid 10001 --gid bazaar --home-dir /var/lib/bazaar \
        --shell /usr/sbin/nologin bazaar \
    && install -d -o bazaar -g bazaar /var/lib/bazaar
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# The code stays root's: the app user can read it, never change it.
COPY . .
# Hashed, compressed static files (whitenoise's manifest storage, chosen by
# BAZAAR_MODE=production). The variables production requires are stand-ins for this one
# command: collectstatic reads neither the key nor the hosts, and nothing is sent.
RUN BAZAAR_MODE=production SECRET_KEY=collectstatic-needs-no-real-key \
    API_JWT_KEYS=build=collectstatic-signs-no-tokens-0123456789abcdefgh \
    ALLOWED_HOSTS=build.invalid EMAIL_HOST=build.invalid BAZAAR_VAR_DIR=/tmp/build-var \
    python manage.py collectstatic --no-input --verbosity 0 \
    && rm -rf /tmp/build-var
USER 10001:10001
EXPOSE 8000
# The server's /healthz, or a worker's heartbeat (whatever PID 1 is); Kubernetes uses
# its own probes instead (deploy/k8s/).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/app/scripts/container-entrypoint.sh", "healthcheck"]
ENTRYPOINT ["/app/scripts/container-entrypoint.sh"]
CMD ["web"]
