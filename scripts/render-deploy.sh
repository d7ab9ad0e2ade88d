#!/usr/bin/env bash
# Render deploy/base (plain manifests for kustomize) from the Helm chart's defaults.
# Usage: scripts/render-deploy.sh [OUTPUT_DIR]   (default: deploy/base)
# scripts/check-shipping.sh renders into a temporary directory and fails when deploy/base differs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/deploy/base}"
HELM="$ROOT/.tools/bin/helm"
[[ -x "$HELM" ]] || HELM="$(command -v helm || true)"
[[ -n "$HELM" ]] || { echo "render-deploy: helm not found: run scripts/install-shipping-tools.sh" >&2; exit 1; }
PY="${VENV:-$ROOT/.venv}/bin/python"

# One file per object plus a kustomization.yaml. Helm's own labels (helm.sh/chart, managed-by Helm) are
# dropped: these manifests are applied without Helm.
SPLIT=$(cat <<'PY'
import sys
from pathlib import Path
from typing import Any

import yaml

HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
HEADER = "# Rendered from helm/mq-service by scripts/render-deploy.sh: do not edit, re-render.\n"


def _strip_helm_labels(obj: dict[str, Any]) -> None:
    metadatas = [obj.get("metadata", {}), obj.get("spec", {}).get("template", {}).get("metadata", {})]
    for metadata in metadatas:
        labels = metadata.get("labels", {})
        for label in HELM_LABELS:
            labels.pop(label, None)


def _file_name(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}.yaml"


def main(out_dir: str) -> None:
    out = Path(out_dir)
    for old in out.glob("*.yaml"):
        old.unlink()
    names = []
    for obj in yaml.safe_load_all(sys.stdin):
        if not obj:
            continue
        _strip_helm_labels(obj)
        name = _file_name(obj)
        if name in names:
            sys.exit(f"split-manifests: two objects would be written to {name}")
        names.append(name)
        body = yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, width=200)
        (out / name).write_text(HEADER + body)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": {"app.kubernetes.io/managed-by": "kustomize"}, "includeSelectors": False}],
        "resources": sorted(names),
    }
    (out / "kustomization.yaml").write_text(HEADER + yaml.safe_dump(kustomization, sort_keys=False))


if __name__ == "__main__":
    main(sys.argv[1])
PY
)

# The queue URL is a placeholder that an overlay replaces (see deploy/README.md). The admin token lives in a
# Secret created in the cluster (mq-service-admin, see deploy/README.md): the chart would generate a new one at
# every render, and a token must not be kept in git.
mkdir -p "$OUT"
"$HELM" template mq-service "$ROOT/helm/mq-service" \
    --set queue.url=https://sqs.us-east-1.amazonaws.com/ACCOUNT_ID/QUEUE_NAME \
    --set admin.existingSecret=mq-service-admin \
    | "$PY" -c "$SPLIT" "$OUT"
