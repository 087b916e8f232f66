# imagesync as a container image: `docker build -t imagesync .`
#
# BASE may be python:3.12-slim (the default) or a Debian release, whose python3 is then used.
# Either way imagesync lives in a virtual environment at /opt/imagesync, built in the first stage
# and copied whole into the second, which has no pip, compiler or build tool.
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
ARG DEBIAN_FRONTEND=noninteractive
ARG DEBCONF_NOWARNINGS=yes
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# Debian's python3 makes virtual environments only with python3-venv (ensurepip), which brings
# python3 itself to a Debian base without it; python:3.12-slim has it built in. /opt/build holds
# pip; /opt/imagesync, the environment that ships, gets none.
RUN if ! python3 -c 'import ensurepip' 2>/dev/null; then \
        apt-get update -qq \
        && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/build \
    && python3 -m venv --without-pip /opt/imagesync
WORKDIR /src
COPY . .
# The imagesync wheel and the wheels of its runtime dependencies, then those wheels alone (no
# index) installed into /opt/imagesync.
RUN /opt/build/bin/pip wheel --quiet --wheel-dir /wheels . \
    && /opt/build/bin/pip --python /opt/imagesync/bin/python install --quiet --no-index --find-links /wheels imagesync

FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
ARG DEBCONF_NOWARNINGS=yes
# git for manifests kept in a git repository, ca-certificates for AWS's TLS endpoints (and Debian's
# python3 on a Debian base without it); a non-root user whose home (and cache) is writable.
RUN packages="git ca-certificates" \
    && if ! command -v python3 >/dev/null; then packages="$packages python3"; fi \
    && apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends $packages >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log \
    && groupadd --gid 10001 imagesync \
    && useradd --uid 10001 --gid 10001 --home-dir /home/imagesync --create-home --shell /usr/sbin/nologin imagesync \
    && install -d -o 10001 -g 10001 -m 0755 /home/imagesync/.cache
COPY --from=build /opt/imagesync /opt/imagesync
ENV PATH=/opt/imagesync/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/home/imagesync \
    XDG_CACHE_HOME=/home/imagesync/.cache \
    PYTHONUNBUFFERED=1
# Last, so that a new version or source reuses every layer above.
ARG VERSION=dev
ARG SOURCE=https://github.com/your-org/imagesync
LABEL org.opencontainers.image.title="imagesync" \
      org.opencontainers.image.description="Keep AWS EC2 Image Builder in the state a git repository describes: plan and apply versioned YAML manifests." \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
USER 10001
WORKDIR /home/imagesync
ENTRYPOINT ["imagesync"]
CMD ["--help"]
