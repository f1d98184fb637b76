#!/usr/bin/env bash
# `make run`: Debian packages (when root), dockerd, .venv, a default config and secret key when absent, then
# exec `.venv/bin/ring-actors serve`. Extra arguments are passed to `serve`.
#
#   RING_CONFIG_DIR   default ~/.config/kemeter/ring
#   config.toml       created when absent: default context on 127.0.0.1:3030, the docker runtime enabled
#   secret-key        created when absent: base64 of 32 random bytes, mode 0600; exported as RING_SECRET_KEY
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

if [[ $(id -u) -eq 0 ]]; then
    scripts/setup-debian.sh
fi
scripts/start-docker.sh
scripts/setup-python.sh

RING_CONFIG_DIR="${RING_CONFIG_DIR:-$HOME/.config/kemeter/ring}"
export RING_CONFIG_DIR
mkdir -p "$RING_CONFIG_DIR"

config="$RING_CONFIG_DIR/config.toml"
if [[ ! -e $config ]]; then
    cat >"$config" <<'TOML'
# Written by `make run` (ring-actors scripts/run-server.sh) because no config existed.
[contexts.default]
current = true
host = "127.0.0.1"
api.scheme = "http"
api.port = 3030

[server.runtime.docker]
enabled = true
TOML
    log "wrote default $config (docker runtime, 127.0.0.1:3030)"
fi

key_file="$RING_CONFIG_DIR/secret-key"
if [[ ! -e $key_file ]]; then
    (umask 077 && head -c32 /dev/urandom | base64 >"$key_file")
    chmod 0600 "$key_file"
    log "generated $key_file (mode 0600)"
fi
RING_SECRET_KEY="$(tr -d '[:space:]' <"$key_file")"
export RING_SECRET_KEY

log "exec .venv/bin/ring-actors serve $*"
exec "$REPO_ROOT/.venv/bin/ring-actors" serve "$@"
