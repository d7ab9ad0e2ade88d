#!/usr/bin/env bash
# Build the container image with podman and run it against a local SQS server (moto) on loopback:
#   /readyz answers 200, the admin token guards /status but not the probes or /metrics, one message
#   published through POST /publish is handled and deleted, the Helm chart's exec preStop hook drains the
#   service from inside the container, and the container exits 0 on SIGTERM.
#
# No registry image can be pulled here: when BASE_IMAGE is not in local storage, a base is built from
# Debian bookworm packages (python3, python3-venv) with mmdebstrap and kept as localhost/mq-service-base.
# Needs root, podman, runc and mmdebstrap (installed with apt-get when missing), and the project venv .venv
# with the dev extra (moto, boto3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
IMAGE="${IMAGE:-localhost/mq-service:check}"
BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim-bookworm}"
DEBIAN_BASE="localhost/mq-service-base:bookworm"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
CONTAINER="mq-service-image-check-$$"
WORK="$(mktemp -d)"
MOTO_PID=""
CONTAINER_STARTED=""

log() { printf 'image-check: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

cleanup() {
    local rc=$?
    if [[ -n "$CONTAINER_STARTED" ]]; then
        if [[ $rc -ne 0 ]]; then
            log "container logs:"
            podman logs "$CONTAINER" 2>&1 | tail -n 40 >&2 || true
        fi
        podman rm --force --time 5 "$CONTAINER" >/dev/null 2>&1 || true
    fi
    if [[ -n "$MOTO_PID" ]]; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

# podman's settings for this machine, without touching /etc/containers: no ulimit above the sandbox's
# own, and runc rather than crun.
export CONTAINERS_CONF="$WORK/containers.conf"
cat > "$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF

ensure_tools() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    if [[ ${#missing[@]} -gt 0 ]]; then
        [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}: install them (apt-get install podman runc mmdebstrap)"
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    [[ -x "$PY" ]] || die "$PY not found: create the venv and pip install -e '.[dev]'"
    "$PY" -c 'import boto3, moto' 2>/dev/null || die "boto3 and moto missing from $VENV: pip install -e '.[dev]'"
    [[ -f "$ROOT/service/app/cli.py" ]] || die "service/app/cli.py not found: nothing to build"
}

# Prints the base image to build on: BASE_IMAGE if local storage has it, else the Debian-built base.
choose_base_image() {
    if podman image exists "$BASE_IMAGE"; then
        echo "$BASE_IMAGE"
        return
    fi
    if ! podman image exists "$DEBIAN_BASE"; then
        local started=$SECONDS
        log "$BASE_IMAGE is not available locally; building $DEBIAN_BASE from Debian packages (about 2 minutes)"
        mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
            bookworm "$WORK/rootfs.tar" - < /etc/apt/sources.list.d/debian.sources
        podman import --quiet "$WORK/rootfs.tar" "$DEBIAN_BASE" >/dev/null
        rm -f "$WORK/rootfs.tar"
        log "built $DEBIAN_BASE in $((SECONDS - started)) s"
    fi
    echo "$DEBIAN_BASE"
}

build_image() {
    local base="$1"
    log "building $IMAGE on $base"
    local mounts=(--volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
    [[ -f /etc/pip.conf ]] && mounts+=(--volume /etc/pip.conf:/etc/pip.conf:ro)
    local started=$SECONDS previous
    previous="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
    # --layers=false: no intermediate image of the build stage is left behind on every run.
    podman build --quiet --layers=false --network host "${mounts[@]}" \
        --build-arg "BASE_IMAGE=$base" --tag "$IMAGE" "$ROOT" >/dev/null
    log "built $IMAGE in $((SECONDS - started)) s"
    # The image this check built last time lost its tag to the new one: remove it (by id) unless still in use.
    if [[ -n "$previous" && "$previous" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]]; then
        podman image rm "$previous" >/dev/null 2>&1 || true
    fi
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_sqs() {
    local port="$1"
    "$PY" -m moto.server -H 127.0.0.1 -p "$port" >"$WORK/moto.log" 2>&1 &
    MOTO_PID=$!
    "$PY" - "$port" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/moto-api/"
deadline = time.monotonic() + 30
while True:
    try:
        urllib.request.urlopen(url, timeout=2).read()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("moto did not start within 30 s")
        time.sleep(0.2)
PY
}

create_queue() {
    AWS_ENDPOINT_URL_SQS="$1" "$PY" -c '
import boto3
sqs = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
print(sqs.create_queue(QueueName="mq-image-check")["QueueUrl"])'
}

run_container() {
    local endpoint="$1" queue_url="$2" admin_port="$3"
    log "starting $CONTAINER (admin port $admin_port)"
    CONTAINER_STARTED=1
    # The same constraints as the Helm chart's pod: read-only root, only /tmp writable, no capabilities.
    podman run --detach --name "$CONTAINER" --network host \
        --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=64m \
        --cap-drop ALL --security-opt no-new-privileges \
        --env "MQ_QUEUE_URL=$queue_url" \
        --env "AWS_ENDPOINT_URL_SQS=$endpoint" \
        --env AWS_ACCESS_KEY_ID=test --env AWS_SECRET_ACCESS_KEY=test --env AWS_REGION=us-east-1 \
        --env MQ_ADMIN_HOST=127.0.0.1 --env "MQ_ADMIN_PORT=$admin_port" \
        --env MQ_ADMIN_TOKEN=image-check-token \
        --env MQ_DELETION_INTERVAL_S=1 --env MQ_WAIT_TIME_SECONDS=1 \
        --env MQ_DRAIN_TIMEOUT_S=10 \
        "$IMAGE" >/dev/null
}

# /readyz, the token, one round trip through /publish and /status, then an empty queue.
round_trip() {
    "$PY" - "$1" "$2" "$3" <<'PY'
import json, sys, time, urllib.error, urllib.request
import boto3

base, endpoint, queue_url = f"http://127.0.0.1:{sys.argv[1]}", sys.argv[2], sys.argv[3]
auth = {"Authorization": "Bearer image-check-token"}

def call(method, path, body=None, headers=auth, timeout=10.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()

def wait_for(what, predicate, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.5)

def find_counter(doc, name):
    if isinstance(doc, dict):
        if isinstance(doc.get(name), int):
            return doc[name]
        return next((n for v in doc.values() if (n := find_counter(v, name)) is not None), None)
    return None

def ready():
    try:
        return call("GET", "/readyz", headers={})[0] == 200
    except OSError:
        return False

def handled():
    status, body = call("GET", "/status")
    return status == 200 and (find_counter(json.loads(body), "handled") or 0) >= 1

sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint,
                   aws_access_key_id="test", aws_secret_access_key="test")

def queue_empty():
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return all(v == "0" for v in attrs.values())

wait_for("GET /readyz to return 200", ready, 60)
print("ok: /readyz 200")
if (code := call("GET", "/status", headers={})[0]) not in (401, 403):
    sys.exit(f"GET /status without the token answered {code}, expected 401 or 403")
print("ok: /status refused without the token")
for path in ("/healthz", "/metrics", "/openapi.json"):
    if (code := call("GET", path, headers={})[0]) != 200:
        sys.exit(f"GET {path} without the token answered {code}, expected 200")
print("ok: /healthz, /metrics and /openapi.json open without the token")
code, body = call("POST", "/publish", {"body": "hello", "route": "hello"})
if not 200 <= code < 300:
    sys.exit(f"POST /publish answered {code}: {body[:300]!r}")
wait_for("the handled counter in GET /status to reach 1", handled, 60)
print("ok: message handled")
wait_for("the queue to be empty", queue_empty, 30)
print("ok: queue empty")
PY
}

# The Helm chart's exec preStop hook (POST /drain with the token from the Secret), run inside the container as the
# kubelet would: it must find mq-service and reach /drain with the token from the environment.
chart_prestop_hook() {
    local helm="$ROOT/.tools/bin/helm"
    [[ -x "$helm" ]] || helm="$(command -v helm || true)"
    if [[ -z "$helm" ]]; then
        log "skipped the chart's exec preStop hook: no helm (scripts/install-shipping-tools.sh)"
        return
    fi
    local -a hook
    mapfile -t hook < <("$helm" template check "$ROOT/helm/mq-service" \
        --set queue.url=https://sqs.us-east-1.amazonaws.com/1/q --set admin.existingSecret=admin \
        | "$PY" -c '
import sys, yaml
deployment = next(d for d in yaml.safe_load_all(sys.stdin) if d and d["kind"] == "Deployment")
command = deployment["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
print("\n".join(command))')
    [[ ${#hook[@]} -gt 0 ]] || die "no exec preStop hook in the chart's Deployment"
    podman exec "$CONTAINER" "${hook[@]}" || die "the chart's exec preStop hook failed in the container"
    log "ok: the chart's exec preStop hook drained the service"
}

# After a drain: /drain reports, readiness is off (no new work), liveness stays on (no restart mid-shutdown).
drain_summary() {
    "$PY" - "$1" <<'PY'
import json, sys, urllib.error, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
req = urllib.request.Request(base + "/drain", method="POST", headers={"Authorization": "Bearer image-check-token"})
with urllib.request.urlopen(req, timeout=30) as resp:
    summary = json.loads(resp.read())
print(f"ok: POST /drain -> {summary}")

def status_of(path):
    try:
        with urllib.request.urlopen(base + path, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code

if (code := status_of("/readyz")) == 200:
    sys.exit("GET /readyz still answers 200 after a drain")
if (code := status_of("/healthz")) != 200:
    sys.exit(f"GET /healthz answers {code} after a drain: the kubelet would restart the container")
print("ok: after the drain /readyz is not ready and /healthz is 200")
PY
}

stop_container() {
    podman stop --time 20 "$CONTAINER" >/dev/null
    local code
    code="$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER")"
    [[ "$code" == 0 ]] || die "container exited $code after SIGTERM, expected 0"
    log "ok: exited 0 after SIGTERM"
    podman logs "$CONTAINER" 2>&1 | "$PY" -c '
import json, sys
lines = [l for l in sys.stdin.read().splitlines() if l.strip()]
def is_json_object(line):
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
sys.exit(None if any(map(is_json_object, lines)) else "no JSON log line: MQ_LOG_FORMAT=json not applied?")'
    log "ok: JSON logs"
}

ensure_tools
build_image "$(choose_base_image)"
sqs_port="$(free_port)"
start_sqs "$sqs_port"
endpoint="http://127.0.0.1:$sqs_port"
queue_url="$(create_queue "$endpoint")"
admin_port="$(free_port)"
run_container "$endpoint" "$queue_url" "$admin_port"
round_trip "$admin_port" "$endpoint" "$queue_url"
chart_prestop_hook
drain_summary "$admin_port"
stop_container
log "passed in $SECONDS s"
