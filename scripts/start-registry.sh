#!/usr/bin/env bash
# Start two real registries (Debian's docker-registry, distribution 2.8):
#   127.0.0.1:5000  anonymous, storage /var/lib/ring-actors-registry (also Docker's and Podman's docker.io mirror)
#   127.0.0.1:5001  basic auth (bcrypt htpasswd, ringuser / ringpass), storage /var/lib/ring-actors-registry-auth
# Each is started only when its /v2/ does not answer (200 for the anonymous one, 401 for the auth one).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
serialize

CONF_DIR="$RING_ETC/registry"
HTPASSWD="$CONF_DIR/htpasswd"
TIMEOUT=${RING_REGISTRY_START_TIMEOUT:-30}

registry_config() {  # ADDR STORAGE [HTPASSWD]
    cat <<YAML
# Written by ring-actors scripts/start-registry.sh; rewritten on every run.
version: 0.1
log:
  level: error   # warn logs every 401 challenge, the normal first step of each authenticated request
  accesslog:
    disabled: true
  fields:
    service: ring-actors-registry
storage:
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $1
  headers:
    X-Content-Type-Options: [nosniff]
YAML
    if [[ $# -ge 3 ]]; then
        cat <<YAML
auth:
  htpasswd:
    realm: ring-actors-test
    path: $3
YAML
    fi
}

ensure_registry() {  # NAME ADDR STORAGE EXPECTED_CODE [HTPASSWD]
    local name=$1 addr=$2 storage=$3 want=$4 conf="$CONF_DIR/$1.yml"
    local log="/var/log/ring-actors-$1.log" pidfile="$RING_RUN/$1.pid" changed=0 code
    mkdir -p "$storage"
    registry_config "$addr" "$storage" "${@:5}" | write_if_changed "$conf" 0644 && changed=1

    code=$(http_code "http://$addr/v2/")
    if [[ $code == "$want" && $changed -eq 0 ]]; then
        log "$name already answers on http://$addr/v2/ ($code)"
        return 0
    fi
    if [[ $code != 000 ]]; then
        if pid_alive "$pidfile" docker-registry && [[ $changed -eq 1 ]]; then
            log "$name: configuration changed, restarting"
            kill "$(<"$pidfile")"
            wait_until 10 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' http://$addr/v2/) == 000 ]]" \
                || die "$name did not stop"
        else
            die "something else answers on http://$addr/v2/ (HTTP $code, expected $want); free the port"
        fi
    fi
    require_root
    log "starting $name on $addr (log: $log)"
    start_detached "$log" "$pidfile" docker-registry serve "$conf"
    if ! wait_until "$TIMEOUT" bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' http://$addr/v2/) == $want ]]"; then
        show_log_tail "$log"
        die "$name did not answer http://$addr/v2/ with $want within ${TIMEOUT}s"
    fi
    log "$name answers on http://$addr/v2/ ($want)"
}

command -v docker-registry >/dev/null || die "docker-registry not found (run scripts/setup-debian.sh)"
mkdir -p "$CONF_DIR"

# The registry accepts only bcrypt entries; keep an existing file when it still verifies.
if ! htpasswd -vb "$HTPASSWD" "$AUTH_USER" "$AUTH_PASSWORD" >/dev/null 2>&1; then
    htpasswd -cbB "$HTPASSWD" "$AUTH_USER" "$AUTH_PASSWORD" 2>/dev/null
    chmod 0644 "$HTPASSWD"
    log "wrote $HTPASSWD ($AUTH_USER)"
fi

ensure_registry registry "$REGISTRY" /var/lib/ring-actors-registry 200
ensure_registry registry-auth "$AUTH_REGISTRY" /var/lib/ring-actors-registry-auth 401 "$HTPASSWD"

code=$(http_code "http://$AUTH_REGISTRY/v2/" -u "$AUTH_USER:$AUTH_PASSWORD")
[[ $code == 200 ]] || die "auth registry refuses $AUTH_USER's password (HTTP $code)"
