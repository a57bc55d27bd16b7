# Sourced by scripts/test and scripts/demo: create .venv and install the pinned
# requirements (runtime with --require-hashes, then the dev tools: pip refuses to
# mix hashed and unhashed requirements in one install). Reinstalls only when a
# requirements file changed since the last successful install.
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
req_digest=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [[ ! -f .venv/.requirements.sha256 ]] || [[ $(cat .venv/.requirements.sha256) != "$req_digest" ]]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        --require-hashes -r requirements.txt
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -r requirements-dev.txt
    echo "$req_digest" >.venv/.requirements.sha256
fi
