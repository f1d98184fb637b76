#!/usr/bin/env bash
# Install the Debian packages the engines and the test environment need.
# Idempotent: when everything is installed it does not touch apt at all (about 0.1 s).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(
    docker.io containerd runc podman containernetworking-plugins docker-registry busybox-static
    netavark aardvark-dns
    socat iptables jq apache2-utils iproute2
    curl ca-certificates make
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    log "all ${#PACKAGES[@]} Debian packages present"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    die "missing Debian packages: ${missing[*]}; as root run: apt-get update && apt-get install -y ${missing[*]}"
fi

log "installing missing Debian packages: ${missing[*]}"
# Package scripts must not start daemons (no systemd; the registry's init script would take port 5000 with its
# own config). policy-rc.d exiting 101 tells invoke-rc.d not to start anything; keep an existing one.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    made_policy=1
fi
cleanup() { if ((made_policy)); then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
apt-get "${apt_opts[@]}" update -qq
apt-get "${apt_opts[@]}" install -y -qq "${missing[@]}"
log "installed: ${missing[*]}"
