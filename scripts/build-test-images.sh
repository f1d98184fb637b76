#!/usr/bin/env bash
# Build the tiny test images from /bin/busybox (busybox-static), push them to the local registries, and leave no
# local copy in Docker or Podman: tests pull through the real registries.
#
#   127.0.0.1:5000/ring-test/busybox:v1   /VERSION and /www/index.html contain "v1"
#   127.0.0.1:5000/ring-test/busybox:v2   ... "v2"
#   127.0.0.1:5000/library/busybox:latest = v1, so `busybox:latest` resolves through dockerd's registry mirror
#   127.0.0.1:5001/ring-test/private:v1   = v1, on the basic-auth registry (ringuser / ringpass)
#
# Each image: CMD ["sh"], ENV PATH=/bin, /etc/passwd and /etc/group with root and nobody (65534).
# Idempotent: skipped when the registries already hold every tag and the recipe (this file) did not change.
# RING_REBUILD_IMAGES=1 forces a rebuild.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
serialize

REPO="$REGISTRY/ring-test/busybox"
HUB_ALIAS="$REGISTRY/library/busybox:latest"
PRIVATE="$AUTH_REGISTRY/ring-test/private:v1"
STAMP=/var/lib/ring-actors-registry/ring-test-images.stamp
APPLETS=(sh sleep echo cat true false test nc wget httpd ls env kill ps id hostname printf date grep mkdir rm
         touch seq head tail)

# Content only (not paths): the same recipe in another checkout is the same recipe.
recipe_hash() { cat "${BASH_SOURCE[0]}" /bin/busybox | sha256sum | cut -c1-64; }

has_tags() {  # URL CURL_ARGS... ; stdin-free: the tags list at URL has every tag in $WANT
    local body
    body=$(curl -sf --max-time 5 "${@:2}" "$1") || return 1
    jq -e --argjson want "$WANT" '(.tags // []) as $t | all($want[]; . as $w | $t | index($w) != null)' \
        <<<"$body" >/dev/null
}

up_to_date() {
    [[ -f $STAMP && $(<"$STAMP") == "$(recipe_hash)" ]] || return 1
    WANT='["v1","v2"]' has_tags "http://$REGISTRY/v2/ring-test/busybox/tags/list" || return 1
    WANT='["latest"]' has_tags "http://$REGISTRY/v2/library/busybox/tags/list" || return 1
    WANT='["v1"]' has_tags "http://$AUTH_REGISTRY/v2/ring-test/private/tags/list" -u "$AUTH_USER:$AUTH_PASSWORD"
}

if [[ ${RING_REBUILD_IMAGES:-0} != 1 ]] && up_to_date; then
    log "registries already hold $REPO:v1, :v2, $HUB_ALIAS and $PRIVATE"
    exit 0
fi

unix_ping "$DOCKER_SOCK" || die "dockerd is not answering on $DOCKER_SOCK (run scripts/start-docker.sh)"
[[ $(http_code "http://$REGISTRY/v2/") == 200 ]] || die "no registry on $REGISTRY (run scripts/start-registry.sh)"
[[ -x /bin/busybox ]] || die "/bin/busybox missing (apt-get install busybox-static)"

WORK=$(mktemp -d)
DOCKER_CFG="$WORK/docker-config"   # login credentials live here only, and are deleted with it
mkdir -p "$DOCKER_CFG"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

make_rootfs() {  # DIR VERSION
    local root=$1 version=$2
    mkdir -p "$root"/{bin,etc,www,tmp,root}
    chmod 1777 "$root/tmp"
    chmod 0700 "$root/root"
    cp /bin/busybox "$root/bin/busybox"
    for applet in "${APPLETS[@]}"; do ln -s busybox "$root/bin/$applet"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    printf '%s\n' "$version" >"$root/VERSION"
    printf '%s\n' "$version" >"$root/www/index.html"
}

build_and_push() {  # VERSION
    local version=$1 root="$WORK/rootfs-$1"
    make_rootfs "$root" "$version"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -c . \
        | "$DOCKER" import --change 'CMD ["sh"]' --change 'ENV PATH=/bin' - "$REPO:$version" >/dev/null \
        || die "docker import of $REPO:$version failed"
    "$DOCKER" push "$REPO:$version" >/dev/null || die "docker push $REPO:$version failed"
    log "pushed $REPO:$version"
}

build_and_push v1
build_and_push v2

"$DOCKER" tag "$REPO:v1" "$HUB_ALIAS"
"$DOCKER" push "$HUB_ALIAS" >/dev/null || die "docker push $HUB_ALIAS failed"
log "pushed $HUB_ALIAS"

"$DOCKER" tag "$REPO:v1" "$PRIVATE"
# (the CLI warns that the password is stored unencrypted: in $DOCKER_CFG, which is deleted on exit)
printf '%s' "$AUTH_PASSWORD" \
    | "$DOCKER" --config "$DOCKER_CFG" login --username "$AUTH_USER" --password-stdin "$AUTH_REGISTRY" \
        >"$WORK/login.out" 2>&1 \
    || { cat "$WORK/login.out" >&2; die "docker login $AUTH_REGISTRY failed"; }
push_rc=0
"$DOCKER" --config "$DOCKER_CFG" push "$PRIVATE" >/dev/null || push_rc=$?
"$DOCKER" --config "$DOCKER_CFG" logout "$AUTH_REGISTRY" >/dev/null || true
((push_rc == 0)) || die "docker push $PRIVATE failed"
log "pushed $PRIVATE"

# No local copies: every test pulls through a registry. (An image a running container uses cannot be removed:
# a warning then, not a failure.)
drop_local() {  # ENGINE_CLI IMAGE...
    "$@" >/dev/null 2>&1 || log "warning: could not remove local copies (${*:2}): in use?"
}
drop_local "$DOCKER" rmi "$REPO:v1" "$REPO:v2" "$HUB_ALIAS" "$PRIVATE"

# ---- verify the registries serve what tests expect, through each engine, then remove the copies again ----
verify_docker() {  # IMAGE EXPECTED_VERSION
    local out
    "$DOCKER" pull -q "$1" >/dev/null || die "docker pull $1 failed"
    out=$("$DOCKER" run --rm "$1" cat /VERSION) || die "docker run $1 failed"
    [[ $out == "$2" ]] || die "$1: /VERSION is '$out', expected '$2'"
}
verify_docker "$REPO:v1" v1
verify_docker "$REPO:v2" v2
verify_docker busybox:latest v1     # through --registry-mirror
drop_local "$DOCKER" rmi "$REPO:v1" "$REPO:v2" busybox:latest
log "docker pulls and runs $REPO:v1, :v2 and busybox:latest (mirror)"

code=$(http_code "http://$AUTH_REGISTRY/v2/ring-test/private/manifests/v1")
[[ $code == 401 ]] || die "$PRIVATE is readable without credentials (HTTP $code)"
code=$(http_code "http://$AUTH_REGISTRY/v2/ring-test/private/manifests/v1" -u "$AUTH_USER:$AUTH_PASSWORD" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json')
[[ $code == 200 ]] || die "$PRIVATE is not readable with $AUTH_USER's credentials (HTTP $code)"
log "$PRIVATE needs credentials and serves with them"

if unix_ping "$PODMAN_SOCK"; then
    out=$(podman run --rm --pull=always "$REPO:v1" cat /VERSION 2>"$WORK/podman.err") \
        || { cat "$WORK/podman.err" >&2; die "podman pull/run $REPO:v1 failed"; }
    [[ $out == v1 ]] || die "podman: $REPO:v1 /VERSION is '$out'"
    podman pull -q docker.io/library/busybox:latest >/dev/null || die "podman pull busybox through the mirror failed"
    drop_local podman rmi "$REPO:v1" docker.io/library/busybox:latest
    log "podman pulls and runs $REPO:v1 and docker.io/library/busybox:latest (mirror)"
fi

if [[ -S $CONTAINERD_SOCK ]]; then
    ctr_=(ctr --address "$CONTAINERD_SOCK" -n ring-actors-selftest)
    "${ctr_[@]}" images pull --hosts-dir /etc/containerd/certs.d "$REPO:v2" >/dev/null \
        || die "ctr pull $REPO:v2 through /etc/containerd/certs.d failed"
    "${ctr_[@]}" images rm --sync "$REPO:v2" >/dev/null
    ctr --address "$CONTAINERD_SOCK" namespaces rm ring-actors-selftest >/dev/null 2>&1 || true
    log "containerd (ctr --hosts-dir /etc/containerd/certs.d) pulls $REPO:v2"
fi

recipe_hash >"$STAMP"
log "test images ready"
