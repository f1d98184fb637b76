#!/usr/bin/env bash
# The whole engine test environment, in order: Debian packages, dockerd, podman service, standalone containerd,
# the two local registries, and the test images in them. Every step is idempotent; a warm run takes well under
# a second. Fails loudly (non-zero, with the daemon's log tail) when any engine cannot be brought up.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

dir="$REPO_ROOT/scripts"
for step in setup-debian start-docker start-podman start-containerd start-registry build-test-images; do
    "$dir/timed.sh" "env:$step" "$dir/$step.sh"
done
log "engines up: docker ($DOCKER_SOCK), podman ($PODMAN_SOCK), containerd ($CONTAINERD_SOCK);" \
    "registries http://$REGISTRY, http://$AUTH_REGISTRY (auth)"
