#!/usr/bin/env bash
# Static checks of everything that ships: the Helm chart, the plain manifests and the Dockerfile.
#   helm lint --strict; helm template of each helm/mq-service/ci/*-values.yaml validated by kubernetes-validate
#   --strict against several Kubernetes versions; yamllint; hadolint; shellcheck of these scripts; kubectl
#   kustomize of deploy/; deploy/base in sync with the chart.
# Runs every check, prints what failed, exits non-zero if anything did.
# Tools: scripts/install-shipping-tools.sh.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
CHART="$ROOT/helm/mq-service"
# The oldest Kubernetes the chart supports on EKS today, and the newest the validator knows.
K8S_VERSIONS=(1.30 1.33 1.35)
# Custom resources: kubernetes-validate has no schema for them. tests/shipping asserts on their fields.
CRD_KINDS="ScaledObject TriggerAuthentication ServiceMonitor"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FAILED=()

tool() {
    local name="$1" path
    for path in "$ROOT/.tools/bin/$name" "$VENV/bin/$name"; do
        [[ -x "$path" ]] && { echo "$path"; return; }
    done
    command -v "$name" || { echo "check-shipping: $name not found: run scripts/install-shipping-tools.sh" >&2; exit 2; }
}
HELM="$(tool helm)" KUBECTL="$(tool kubectl)" VALIDATE="$(tool kubernetes-validate)"
YAMLLINT="$(tool yamllint)" HADOLINT="$(tool hadolint)" SHELLCHECK="$(tool shellcheck)"

# check NAME COMMAND...: run COMMAND, keep its output, report it only on failure.
check() {
    local name="$1"; shift
    if "$@" >"$WORK/out" 2>&1; then
        printf 'ok    %s\n' "$name"
    else
        printf 'FAIL  %s\n' "$name"
        sed 's/^/      /' "$WORK/out"
        FAILED+=("$name")
    fi
}

# Validates built-in kinds strictly; a built-in kind without a schema (a wrong apiVersion) is an error.
validate_manifests() {
    local file="$1" version out
    for version in "${K8S_VERSIONS[@]}"; do
        out="$("$VALIDATE" --strict --quiet -k "$version" "$file" 2>&1)" || { echo "$out"; return 1; }
        local unknown
        unknown="$(grep "Couldn't find schema" <<<"$out" | grep -v -E "kind ($(tr ' ' '|' <<<"$CRD_KINDS")) " || true)"
        [[ -z "$unknown" ]] || { echo "$unknown"; return 1; }
    done
}

# render_to FILE HELM_ARGS...
render_to() {
    local file="$1"; shift
    "$HELM" template mq-service "$CHART" --namespace mq-service "$@" >"$file"
}

# kustomize_to FILE DIR
kustomize_to() {
    "$KUBECTL" kustomize "$2" >"$1"
}

deploy_in_sync() {
    "$ROOT/scripts/render-deploy.sh" "$WORK/deploy-base" && diff -ru "$ROOT/deploy/base" "$WORK/deploy-base"
}

for values in "$CHART"/ci/*-values.yaml; do
    name="$(basename "$values" -values.yaml)"
    check "helm lint --strict ($name)" "$HELM" lint --strict "$CHART" -f "$values"
    check "helm template ($name)" render_to "$WORK/$name.yaml" -f "$values"
    check "kubernetes-validate --strict ${K8S_VERSIONS[*]} ($name)" validate_manifests "$WORK/$name.yaml"
    check "yamllint rendered ($name)" "$YAMLLINT" --strict -c "$ROOT/.yamllint.yaml" "$WORK/$name.yaml"
done

check "yamllint chart values and deploy/" "$YAMLLINT" --strict -c "$ROOT/.yamllint.yaml" \
    "$CHART/Chart.yaml" "$CHART/values.yaml" "$CHART/ci" "$ROOT/deploy" "$ROOT/.yamllint.yaml"
check "values.schema.json and deploy/iam-policy.json are JSON" \
    "$VENV/bin/python" -c 'import json, sys; [json.load(open(p)) for p in sys.argv[1:]]' \
    "$CHART/values.schema.json" "$ROOT/deploy/iam-policy.json"
check "hadolint Dockerfile" "$HADOLINT" "$ROOT/Dockerfile"
check "shellcheck shipping scripts" "$SHELLCHECK" "$ROOT/scripts/install-shipping-tools.sh" \
    "$ROOT/scripts/check-shipping.sh" "$ROOT/scripts/image-check.sh" "$ROOT/scripts/render-deploy.sh"

for dir in "$ROOT"/deploy/base "$ROOT"/deploy/overlays/*/; do
    dir="${dir%/}"
    name="deploy/${dir#"$ROOT/deploy/"}"
    check "kubectl kustomize $name" kustomize_to "$WORK/kustomize.yaml" "$dir"
    check "kubernetes-validate --strict ${K8S_VERSIONS[*]} ($name)" validate_manifests "$WORK/kustomize.yaml"
done

check "deploy/base in sync with the chart (scripts/render-deploy.sh)" deploy_in_sync

if [[ ${#FAILED[@]} -gt 0 ]]; then
    printf '\ncheck-shipping: %d check(s) failed:\n' "${#FAILED[@]}"
    printf '  - %s\n' "${FAILED[@]}"
    exit 1
fi
printf '\ncheck-shipping: all checks passed\n'
