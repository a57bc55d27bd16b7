# Image of the codesphere-release action. The runner builds it on every job
# (runs.image: Dockerfile) or pulls the published one from GHCR.
# GitHub's rules for action images: no USER (the mounted workspace belongs to
# root) and no WORKDIR (the runner sets /github/workspace itself).
#
# The official slim image on the same Debian release as the test's stand-in
# (tests/test_container.py builds with --build-arg BASE_IMAGE=<debootstrap image>).
ARG BASE_IMAGE=python:3.12-slim-bookworm
FROM ${BASE_IMAGE}

# Unbuffered so log lines and ::workflow commands appear in order; bytecode is
# compiled below at build time, nothing needs to write it at run time.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# Runtime dependencies only, every file checked against its pinned hash. A venv
# (also required on Debian's Python, PEP 668); its pip and setuptools are removed
# once they have done their job.
COPY requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-cache-dir --no-compile --require-hashes \
        --only-binary=:all: -r /tmp/requirements.txt \
    && /opt/venv/bin/python -m pip uninstall --yes pip setuptools \
    && rm -rf /tmp/requirements.txt /root/.cache

COPY entrypoint.py /action/entrypoint.py
COPY codesphere_action/ /action/codesphere_action/

# Start-up time: compile everything the action can import, once, here.
# unchecked-hash .pyc files stay valid whatever timestamps the layers get. Then
# import every module of the package with bytecode writing on, which also caches
# the standard-library modules it uses (the official images ship without .pyc).
RUN /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        /action /opt/venv/lib \
    && PYTHONDONTWRITEBYTECODE='' PYTHONPATH=/action /opt/venv/bin/python -c "import importlib, pkgutil, codesphere_action as p; [importlib.import_module(m.name) for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]"

ENTRYPOINT ["/opt/venv/bin/python", "/action/entrypoint.py"]
