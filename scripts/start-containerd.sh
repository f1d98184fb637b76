#!/usr/bin/env bash
# Start the standalone containerd (socket /run/containerd/containerd.sock, state /var/lib/containerd) used by the
# containerd runtime, unless `ctr version` already answers on it. It is separate from the containerd that dockerd
# runs for itself (/var/run/docker/containerd/containerd.sock).
#
# Also writes the standard registry host configuration (/etc/containerd/certs.d/<host>/hosts.toml) for the local
# test registries: plain HTTP for 127.0.0.1:5000 / :5001, and docker.io mirrored by 127.0.0.1:5000, the same as
# dockerd's --registry-mirror. containerd 1.6 clients pull themselves, so only clients that read certs.d use it
# (ctr with --hosts-dir, and the project's own pull code).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
serialize

LOG=/var/log/ring-actors-containerd.log
PIDFILE="$RING_RUN/containerd.pid"
TIMEOUT=${RING_CONTAINERD_START_TIMEOUT:-30}
CERTS_D=/etc/containerd/certs.d

# ctr waits for a socket that does not exist yet until its connect timeout: test the socket file first.
ctr_version() {
    [[ -S $CONTAINERD_SOCK ]] &&
        timeout 10 ctr --address "$CONTAINERD_SOCK" --connect-timeout 2s version >/dev/null 2>&1
}

for reg in "$REGISTRY" "$AUTH_REGISTRY"; do
    write_if_changed "$CERTS_D/$reg/hosts.toml" 0644 <<TOML || true
# Written by ring-actors scripts/start-containerd.sh
server = "http://$reg"

[host."http://$reg"]
  capabilities = ["pull", "resolve", "push"]
TOML
done
write_if_changed "$CERTS_D/docker.io/hosts.toml" 0644 <<TOML || true
# Written by ring-actors scripts/start-containerd.sh
server = "https://registry-1.docker.io"

[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
TOML

if ctr_version; then
    log "containerd already answers on $CONTAINERD_SOCK"
    exit 0
fi

require_root
command -v containerd >/dev/null || die "containerd not found (run scripts/setup-debian.sh)"

if pid_alive "$PIDFILE" containerd; then
    log "containerd (pid $(<"$PIDFILE")) is running but not answering yet; waiting"
else
    mkdir -p "$(dirname "$CONTAINERD_SOCK")"
    rm -f "$CONTAINERD_SOCK"
    log "starting containerd on $CONTAINERD_SOCK (log: $LOG)"
    start_detached "$LOG" "$PIDFILE" containerd --address "$CONTAINERD_SOCK"
fi

t0=$SECONDS
if ! wait_until "$TIMEOUT" ctr_version; then
    show_log_tail "$LOG"
    die "containerd did not answer \`ctr --address $CONTAINERD_SOCK version\` within ${TIMEOUT}s"
fi
log "containerd answers after $((SECONDS - t0))s"
