# shellcheck shell=bash
# Helpers shared by the set-up scripts. Source it; do not run it.
#
# Every daemon the scripts start is detached (setsid, stdin from /dev/null, output to a log file, no inherited
# file descriptors), so it never holds the caller's pipes open: `make test | tee` and CI end when the tests do.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT_NAME="$(basename "$0" .sh)"

# The Debian docker CLI matches the Debian engine (API 1.41). Some images of this machine also carry a newer
# docker CLI in /usr/local/bin; prefer the packaged one so a fresh machine behaves the same.
if [[ -x /usr/bin/docker ]]; then DOCKER="${DOCKER:-/usr/bin/docker}"; else DOCKER="${DOCKER:-docker}"; fi

DOCKER_SOCK="${DOCKER_SOCK:-/var/run/docker.sock}"
PODMAN_SOCK="${PODMAN_SOCK:-/run/podman/podman.sock}"
CONTAINERD_SOCK="${CONTAINERD_SOCK:-/run/containerd/containerd.sock}"
REGISTRY="127.0.0.1:5000"
AUTH_REGISTRY="127.0.0.1:5001"
AUTH_USER="ringuser"
AUTH_PASSWORD="ringpass"
RING_ETC="/etc/ring-actors"
RING_RUN="/run/ring-actors"

log() { printf '[%s] %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it starts system daemons): sudo $0"
}

# serialize: one instance of the calling script at a time on this machine (two `make test` runs share the
# daemons; without this both could start a podman service on the same socket or rebuild the images at once).
serialize() {
    [[ $(id -u) -eq 0 ]] || return 0
    mkdir -p "$RING_RUN"
    exec 9>"$RING_RUN/$SCRIPT_NAME.lock"
    flock -w 300 9 || die "another $SCRIPT_NAME has held $RING_RUN/$SCRIPT_NAME.lock for 300 s"
}

# wait_until TIMEOUT_S COMMAND...: poll COMMAND every 0.2 s until it succeeds; 1 if it never did.
wait_until() {
    local timeout=$1; shift
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# unix_ping SOCKET: true when a Docker-compatible API on SOCKET answers GET /_ping with 200 OK.
unix_ping() {
    [[ -S $1 ]] || return 1
    [[ $(curl -sS --max-time 3 --unix-socket "$1" http://localhost/_ping 2>/dev/null) == OK ]]
}

# unix_listening SOCKET: true when something accepts connections on the Unix socket SOCKET. A daemon killed
# with SIGKILL (or a machine restored from a snapshot) leaves its socket file behind with nobody listening.
unix_listening() {
    [[ -S $1 ]] || return 1
    timeout 3 socat -u OPEN:/dev/null "UNIX-CONNECT:$1" 2>/dev/null
}

# remove_stale_socket SOCKET: delete SOCKET (and its .ttrpc sibling) when nobody listens on it; say so.
remove_stale_socket() {
    [[ -S $1 ]] || return 0
    unix_listening "$1" && return 0
    log "removing stale socket $1 (nothing listens on it)"
    rm -f "$1" "$1.ttrpc"
}

# http_code URL [CURL_ARGS...]: the HTTP status of GET URL, 000 when nothing answers.
http_code() {
    local url=$1; shift
    curl -s -o /dev/null --max-time 3 -w '%{http_code}' "$@" "$url" 2>/dev/null || true
}

# pid_alive PIDFILE NAME: true when PIDFILE names a live process whose command is NAME.
pid_alive() {
    local pidfile=$1 name=$2 pid
    [[ -f $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/comm && $(<"/proc/$pid/comm") == "$name"* ]] || return 1
    # A killed daemon stays a zombie until pid 1 reaps it: that is not alive.
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

# start_detached LOGFILE PIDFILE COMMAND...: start COMMAND in its own session, detached from us.
start_detached() {
    local logfile=$1 pidfile=$2; shift 2
    mkdir -p "$(dirname "$logfile")" "$(dirname "$pidfile")"
    printf '\n===== %s ring-actors starts: %s\n' "$(date -Is)" "$*" >>"$logfile"
    (
        # Close every descriptor above 2 (make's jobserver, a CI runner's pipes, ...).
        for fd in $(ls /proc/$BASHPID/fd); do
            if ((fd > 2)); then eval "exec ${fd}>&-" 2>/dev/null || true; fi
        done
        # Daemons never run from the caller's directory: conmon (Podman) writes files into its
        # working directory, and nothing should pin a checkout.
        cd /
        exec setsid "$@" </dev/null >>"$logfile" 2>&1
    ) &
    echo $! >"$pidfile"
}

# show_log_tail LOGFILE: print the end of a daemon log to stderr (for failures).
show_log_tail() {
    [[ -f $1 ]] || return 0
    printf -- '----- last lines of %s -----\n' "$1" >&2
    tail -n 40 "$1" >&2 || true
    printf -- '----- end of %s -----\n' "$1" >&2
}

# write_if_changed PATH MODE: write stdin to PATH only when the content differs; true when it changed.
write_if_changed() {
    # Called as `write_if_changed ... && changed=1`, where errexit is off: check each step.
    local path=$1 mode=$2 tmp
    mkdir -p "$(dirname "$path")" || die "cannot create $(dirname "$path")"
    tmp=$(mktemp "${path}.XXXXXX") || die "cannot write in $(dirname "$path")"
    cat >"$tmp" && chmod "$mode" "$tmp" || die "cannot write $tmp"
    if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        return 1
    fi
    mv -f "$tmp" "$path" || die "cannot replace $path"
    log "wrote $path"
    return 0
}
