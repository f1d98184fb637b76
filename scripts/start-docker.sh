#!/usr/bin/env bash
# Start dockerd (Debian's docker.io, API 1.41) unless /var/run/docker.sock already answers GET /_ping.
# dockerd gets --registry-mirror http://127.0.0.1:5000 so Docker Hub names (busybox:latest) resolve through the
# local registry that start-registry.sh runs. No other flag is needed here: overlay2 on ext4, cgroupfs (cgroup v1,
# no systemd) and iptables (nf_tables backend) all work with dockerd's defaults on this host.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
serialize

LOG=/var/log/ring-actors-dockerd.log
PIDFILE=/var/run/docker.pid   # dockerd's own pid file
MIRROR="http://127.0.0.1:5000"
TIMEOUT=${RING_DOCKER_START_TIMEOUT:-60}

check_mirror() {
    local mirrors
    mirrors=$(curl -sS --max-time 5 --unix-socket "$DOCKER_SOCK" http://localhost/v1.41/info \
        | jq -r '.RegistryConfig.Mirrors // [] | join(" ")')
    [[ " $mirrors " == *" $MIRROR/ "* || " $mirrors " == *" $MIRROR "* ]] \
        || die "dockerd on $DOCKER_SOCK runs without --registry-mirror $MIRROR (mirrors: '${mirrors}');" \
               "stop it so this script can start it with the mirror"
}

selftest() {
    # A container from a local image on the default bridge: exercises overlay2, runc, cgroups and iptables.
    local dir rc=0
    dir=$(mktemp -d)
    mkdir -p "$dir/bin"
    cp /bin/busybox "$dir/bin/busybox"
    ln -s busybox "$dir/bin/sh"
    tar -C "$dir" -c . | "$DOCKER" import --change 'ENV PATH=/bin' - ring-actors-selftest:local >/dev/null \
        || die "docker import of a local rootfs failed"
    rm -rf "$dir"
    out=$("$DOCKER" run --rm ring-actors-selftest:local sh -c 'echo selftest-ok' 2>&1) || rc=$?
    "$DOCKER" rmi -f ring-actors-selftest:local >/dev/null 2>&1 || true
    [[ $rc -eq 0 && $out == selftest-ok ]] || { show_log_tail "$LOG"; die "docker run --rm failed: $out"; }
    log "docker run --rm of a local image works"
}

if unix_ping "$DOCKER_SOCK"; then
    check_mirror
    log "dockerd already answers on $DOCKER_SOCK"
    exit 0
fi

require_root
command -v dockerd >/dev/null || die "dockerd not found (run scripts/setup-debian.sh)"

if pid_alive "$PIDFILE" dockerd; then
    log "dockerd (pid $(<"$PIDFILE")) is running but not answering yet; waiting"
else
    # A pid file left by a dead dockerd makes the next one refuse to start.
    rm -f "$PIDFILE"
    # dockerd uses the system containerd whenever its socket file exists, and otherwise starts its own. A socket
    # left by a killed standalone containerd (start-containerd.sh) would make dockerd dial it for 60 s and give
    # up: remove it so dockerd runs its own containerd.
    remove_stale_socket "$CONTAINERD_SOCK"
    # With ip_forward off, dockerd turns it on AND sets the FORWARD policy to DROP, which also drops traffic
    # between containers on other bridges (podman's, containerd's CNI bridge: br_netfilter sends bridged frames
    # through FORWARD). Turning forwarding on first keeps the policy ACCEPT for every engine on this test host.
    sysctl -qw net.ipv4.ip_forward=1 || log "warning: could not set net.ipv4.ip_forward=1"
    args=(--registry-mirror "$MIRROR")
    # Every namespace gets its own ring_<ns> bridge and Docker never frees them by itself; the default pools
    # hold about 30 networks, far fewer than a test run creates. /24s out of 10.128.0.0/9 give 32768 local
    # bridges (disjoint from containerd's 10.43/16 and the VMs' 10.42/16).
    if ! { [[ -f /etc/docker/daemon.json ]] && jq -e 'has("default-address-pools")' /etc/docker/daemon.json >/dev/null 2>&1; }; then
        args+=(--default-address-pool "base=10.128.0.0/9,size=24")
    fi
    if [[ -f /etc/docker/daemon.json ]] && jq -e 'has("registry-mirrors")' /etc/docker/daemon.json >/dev/null 2>&1; then
        # dockerd refuses to start when a directive is both a flag and in daemon.json.
        jq -e --arg m "$MIRROR" '."registry-mirrors" | map(rtrimstr("/")) | index($m)' /etc/docker/daemon.json \
            >/dev/null || die "/etc/docker/daemon.json sets registry-mirrors without $MIRROR"
        args=("${args[@]:2}")
    fi
    log "starting dockerd ${args[*]} (log: $LOG)"
    start_detached "$LOG" "$RING_RUN/dockerd.launcher.pid" dockerd "${args[@]}"
fi

t0=$SECONDS
if ! wait_until "$TIMEOUT" unix_ping "$DOCKER_SOCK"; then
    show_log_tail "$LOG"
    die "dockerd did not answer GET /_ping on $DOCKER_SOCK within ${TIMEOUT}s"
fi
log "dockerd answers after $((SECONDS - t0))s"
check_mirror
selftest
