#!/usr/bin/env bash
# Prepare a host without Docker to build and run the action's image with podman,
# offline. CONTRIBUTING.md ("Container tests on a host without Docker") names the
# symptom each setting answers.
#
# Idempotent: installs podman/runc/debootstrap only when missing, rewrites the two
# podman config files, and builds the debootstrap stand-in base image only when it
# is not already in podman's storage. Everything lives outside the repo, under
# CS_CONTAINER_DIR (default /tmp/cs-container). Prints the time of every step.
#
# For later podman calls, export the variables it prints at the end:
#   CONTAINERS_CONF=$CS_CONTAINER_DIR/containers.conf
#   CONTAINERS_STORAGE_CONF=$CS_CONTAINER_DIR/storage.conf
set -euo pipefail

W="${CS_CONTAINER_DIR:-/tmp/cs-container}"
BASE_IMAGE="${CS_BASE_IMAGE:-localhost/python-standin:bookworm}"
SUITE=bookworm
export CONTAINERS_CONF="$W/containers.conf"
export CONTAINERS_STORAGE_CONF="$W/storage.conf"

die() {
    echo "container-setup: ERROR: $*" >&2
    exit 1
}

# Microseconds since the epoch (bash 5), so timings need no external tool.
now_us() { echo "${EPOCHREALTIME/./}"; }
elapsed() { # start_us -> "12.3 s"
    local d=$(($(now_us) - $1))
    printf '%d.%d s' $((d / 1000000)) $((d % 1000000 / 100000))
}
step_start=0
step() {
    step_start=$(now_us)
    echo "container-setup: $*"
}
step_done() {
    echo "container-setup:   done in $(elapsed "$step_start")"
}

total_start=$(now_us)
mkdir -p "$W/tmp" "$W/storage" "$W/run" || die "cannot create $W"

# 1. Packages ---------------------------------------------------------------------
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
    step "installing ${missing[*]} with apt-get"
    [[ $(id -u) -eq 0 ]] || die "need root to apt-get install ${missing[*]} (or install them yourself)"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install ${missing[*]} yourself"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$W/apt.log" 2>&1 || die "apt-get update failed; see $W/apt.log"
    apt-get install -y -qq "${missing[@]}" >>"$W/apt.log" 2>&1 ||
        die "apt-get install ${missing[*]} failed; see $W/apt.log"
    step_done
else
    echo "container-setup: podman, runc and debootstrap already installed"
fi

# 2. podman configuration -----------------------------------------------------------
# runc: crun fails on hosts with cgroups in hybrid mode. Explicit ulimits: the
# defaults may exceed the host's hard limits. storage.conf must exist before the
# first podman call, or every `podman run` hangs 20 s on cleanup.
write_if_changed() { # path content
    if [[ ! -f $1 ]] || [[ "$(cat "$1")" != "$2" ]]; then
        printf '%s\n' "$2" >"$1.new" && mv "$1.new" "$1"
    fi
}
write_if_changed "$CONTAINERS_CONF" "[containers]
default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]
[engine]
runtime = \"runc\"
tmp_dir = \"$W/tmp\""
write_if_changed "$CONTAINERS_STORAGE_CONF" "[storage]
driver = \"overlay\"
graphroot = \"$W/storage\"
runroot = \"$W/run\""

step "checking podman"
podman version --format '{{.Client.Version}}' >/dev/null || die "podman does not work; see podman info"
step_done

# 3. stand-in base image ------------------------------------------------------------
# No registry needed: build a Debian image with Python by debootstrap and import it
# (CS_BASE_IMAGE naming an image already pulled skips this).
if podman image exists "$BASE_IMAGE"; then
    echo "container-setup: base image $BASE_IMAGE already present"
else
    step "building stand-in base image $BASE_IMAGE with debootstrap (once; about a minute)"
    rm -rf "$W/rootfs" "$W/base.tar"
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python-is-python3,ca-certificates \
        "$SUITE" "$W/rootfs" >"$W/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $W/debootstrap.log"
    # Debootstrap copies the host's apt caches and lists; they are not part of a base image.
    rm -rf "$W/rootfs/var/cache/apt/archives/"*.deb "$W/rootfs/var/lib/apt/lists/"*
    tar -C "$W/rootfs" --numeric-owner -cf "$W/base.tar" . || die "cannot tar $W/rootfs"
    podman import -q --change 'CMD ["python3"]' "$W/base.tar" "$BASE_IMAGE" >/dev/null ||
        die "podman import of $W/base.tar failed"
    rm -rf "$W/rootfs" "$W/base.tar"
    step_done
fi

# Test runs untag their images and keep the layers as build cache; drop what no
# run has used for a day so the cache does not grow without bound.
podman image prune --force --filter until=24h >/dev/null 2>&1 || true

echo "container-setup: ready in $(elapsed "$total_start"); for podman use:"
echo "export CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
