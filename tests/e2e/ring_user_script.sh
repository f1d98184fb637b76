#!/usr/bin/env bash
# A deployment script as a Ring user writes it, run unchanged against ring-actors.
# The only difference from a Ring setup is what `ring` means: here a function that
# calls `ring-actors` (or $RING_ACTORS_CMD, e.g. "python -m ring_actors.cli.main").
#
#   RING_CONFIG_DIR   where the CLI finds config.toml (the server address) and stores its login
#   NS                namespace to deploy into (default user-script)
#   IMAGE             image to run (default the test registry's busybox)
set -euo pipefail

ring() { ${RING_ACTORS_CMD:-ring-actors} "$@"; }

NS=${NS:-user-script}
IMAGE=${IMAGE:-127.0.0.1:5000/ring-test/busybox:v1}
ADMIN_PASSWORD=${ADMIN_PASSWORD:-changeme}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== login"
ring login --username admin --password "$ADMIN_PASSWORD"

echo "== apply"
cat >"$work/ring.yaml" <<YAML
namespaces:
  app:
    name: $NS
deployments:
  web:
    name: web
    namespace: \$NS
    image: \$IMAGE
    replicas: 1
    command: ["sh", "-c", "echo hello from \$GREETING; exec httpd -f -p 80 -h /www"]
    labels:
      app: web
YAML
printf 'GREETING=ring-user-script\n' >"$work/.env"
NS=$NS IMAGE=$IMAGE ring apply -f "$work/ring.yaml" --env-file "$work/.env"

echo "== wait for running"
status=""
for _ in $(seq 1 90); do
    status=$(ring deployment list --namespace "$NS" -o json | jq -r '.[] | select(.name == "web") | .status')
    [[ $status == running ]] && break
    sleep 1
done
if [[ $status != running ]]; then
    echo "web did not become running (last status: ${status:-none})" >&2
    exit 1
fi
id=$(ring deployment list --namespace "$NS" --status running -o json | jq -r '.[] | select(.name == "web") | .id')
echo "web is running as $id"

echo "== logs"
found=""
for _ in $(seq 1 30); do
    logs=$(ring deployment logs "$id" --tail 20)
    if grep -q "hello from ring-user-script" <<<"$logs"; then
        found=yes
        break
    fi
    sleep 1
done
[[ -n $found ]] || { echo "expected log line not found" >&2; exit 1; }

echo "== events"
ring deployment events "$id" --limit 20 | tee "$work/events.txt"
grep -q scale_up "$work/events.txt"

echo "== inspect"
details=$(ring deployment inspect "$id")
grep -q "Namespace     : $NS" <<<"$details"

echo "== delete"
ring deployment delete "$id"
for _ in $(seq 1 60); do
    remaining=$(ring deployment list --namespace "$NS" -o json | jq 'length')
    [[ $remaining == 0 ]] && break
    sleep 1
done
[[ $remaining == 0 ]] || { echo "deployment still listed after delete" >&2; exit 1; }
ring namespace delete "$NS"

if ring deployment inspect "$id" >/dev/null 2>&1; then
    echo "deleted deployment still inspectable" >&2
    exit 1
else
    rc=$?
    [[ $rc == 4 ]] || { echo "expected exit 4 (not found), got $rc" >&2; exit 1; }
fi

echo "OK"
