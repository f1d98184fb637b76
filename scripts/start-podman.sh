#!/usr/bin/env bash
# Configure rootful Podman for this host and start its API service on /run/podman/podman.sock
# (Docker-compatible /v1.41/... and libpod /v4.0.0/libpod/...) unless it already answers GET /_ping.
#
# Host traps handled here (see /work/shared/env-notes.md):
# - crun fails ("cgroups in hybrid mode not supported"): runtime = runc, cgroup_manager = cgroupfs (no systemd);
# - podman's default rlimits exceed this host's hard limit (nofile 20000): explicit default_ulimits;
# - no journald: events_logger = file (the events API still works, from /run/libpod/events/events.log).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
serialize

LOG=/var/log/ring-actors-podman.log
PIDFILE="$RING_RUN/podman.pid"
TIMEOUT=${RING_PODMAN_START_TIMEOUT:-60}
changed=0

write_if_changed /etc/containers/containers.conf 0644 <<'TOML' && changed=1
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
TOML

# Plain HTTP for the local test registries; docker.io names resolve through the anonymous one first, as they
# do for dockerd (--registry-mirror), so `busybox:latest` works offline on both engines.
write_if_changed /etc/containers/registries.conf.d/ring-actors-local.conf 0644 <<TOML && changed=1
# Written by ring-actors scripts/start-podman.sh
[[registry]]
location = "$REGISTRY"
insecure = true

[[registry]]
location = "$AUTH_REGISTRY"
insecure = true

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "$REGISTRY"
insecure = true
TOML

if unix_ping "$PODMAN_SOCK"; then
    if ((changed == 0)); then
        log "podman service already answers on $PODMAN_SOCK"
        exit 0
    fi
    if pid_alive "$PIDFILE" podman; then
        log "configuration changed: restarting the podman service"
        kill "$(<"$PIDFILE")"
        wait_until 15 bash -c "! [[ -d /proc/$(<"$PIDFILE") ]]" || die "podman service did not stop"
    else
        die "a podman service we did not start answers on $PODMAN_SOCK and the configuration changed; restart it"
    fi
fi

require_root
command -v podman >/dev/null || die "podman not found (run scripts/setup-debian.sh)"
command -v runc >/dev/null || die "runc not found (run scripts/setup-debian.sh)"

if pid_alive "$PIDFILE" podman; then
    log "podman service (pid $(<"$PIDFILE")) is running but not answering yet; waiting"
else
    mkdir -p "$(dirname "$PODMAN_SOCK")"
    rm -f "$PODMAN_SOCK"
    log "starting podman system service (log: $LOG)"
    start_detached "$LOG" "$PIDFILE" podman system service --time=0 "unix://$PODMAN_SOCK"
fi

t0=$SECONDS
if ! wait_until "$TIMEOUT" unix_ping "$PODMAN_SOCK"; then
    show_log_tail "$LOG"
    die "podman service did not answer GET /_ping on $PODMAN_SOCK within ${TIMEOUT}s"
fi
log "podman service answers after $((SECONDS - t0))s"
