"""The Helm chart, rendered with `helm template` and checked object by object.

The chart is the contract between the service and the cluster: the probe and hook paths must be the admin API's
routes, the grace period must outlast the drain, and values that cannot work must be refused at install time.
"""

from __future__ import annotations

import base64
import http.server
import os
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "mq-service"
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
# The admin API's routes (service/admin): probes and /metrics are open, the rest may need the token.
LIVENESS_PATH, READINESS_PATH, DRAIN_PATH, METRICS_PATH = "/healthz", "/readyz", "/drain", "/metrics"
ADMIN_PORT_NAME = "admin"

Obj = dict[str, Any]


@cache
def _helm() -> str:
    local = ROOT / ".tools" / "bin" / "helm"
    if os.access(local, os.X_OK):
        return str(local)
    found = shutil.which("helm")
    if found is None:
        pytest.fail(
            "helm not found: run scripts/install-shipping-tools.sh (it installs .tools/bin/helm)", pytrace=False
        )
    return found


def _merge(base: Obj, override: Obj) -> Obj:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _helm_template(values: Obj) -> subprocess.CompletedProcess[str]:
    # JSON is YAML: the values go to helm on stdin.
    return subprocess.run(
        [_helm(), "template", "mq", str(CHART), "--namespace", "orders", "-f", "-"],
        input=yaml.safe_dump(values),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def render(**overrides: Any) -> list[Obj]:
    """Render the chart with a queue URL plus `overrides` (nested dicts merge into the values)."""
    result = _helm_template(_merge({"queue": {"url": QUEUE_URL}}, overrides))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def refusal(**values: Any) -> str:
    """Render with exactly `values`; assert helm refuses and return its error message."""
    result = _helm_template(values)
    assert result.returncode != 0, f"helm accepted {values}"
    return result.stderr


def the(objs: list[Obj], kind: str) -> Obj:
    found = [obj for obj in objs if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[o['kind'] for o in objs]}"
    return found[0]


def kinds(objs: list[Obj]) -> set[str]:
    return {obj["kind"] for obj in objs}


def pod_spec(objs: list[Obj]) -> Obj:
    spec: Obj = the(objs, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(objs: list[Obj]) -> Obj:
    containers = pod_spec(objs)["containers"]
    assert len(containers) == 1
    first: Obj = containers[0]
    return first


def env(objs: list[Obj]) -> dict[str, Any]:
    """Container env as name -> value (or the valueFrom mapping)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(objs)["env"]}


def kubelet_expanded(value: str) -> str:
    """`value` with $(K8S_POD_IP) and $(K8S_NAMESPACE_NAME) expanded as the kubelet would in a pod."""
    return value.replace("$(K8S_POD_IP)", "10.1.2.3").replace("$(K8S_NAMESPACE_NAME)", "orders")


@pytest.fixture(scope="module")
def defaults() -> list[Obj]:
    return render()


# Probes, hooks and ports ------------------------------------------------------------------------------


def test_probes_use_the_admin_routes_on_the_named_port(defaults: list[Obj]) -> None:
    main = container(defaults)
    assert main["ports"] == [{"name": ADMIN_PORT_NAME, "containerPort": 8080, "protocol": "TCP"}]
    assert main["readinessProbe"]["httpGet"] == {"path": READINESS_PATH, "port": ADMIN_PORT_NAME}
    assert main["livenessProbe"]["httpGet"] == {"path": LIVENESS_PATH, "port": ADMIN_PORT_NAME}
    assert main["startupProbe"]["httpGet"] == {"path": LIVENESS_PATH, "port": ADMIN_PORT_NAME}


def test_startup_probe_gives_the_process_time_to_start(defaults: list[Obj]) -> None:
    probe = container(defaults)["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 30


def test_prestop_drains_by_post_from_inside_the_container(defaults: list[Obj]) -> None:
    hook = container(defaults)["lifecycle"]["preStop"]
    assert hook == {"exec": {"command": ["mq-service", "drain"]}}  # an httpGet hook could only GET


def test_service_and_service_monitor_target_the_admin_port() -> None:
    objs = render(serviceMonitor={"enabled": True})
    service_ports = the(objs, "Service")["spec"]["ports"]
    assert service_ports == [{"name": ADMIN_PORT_NAME, "port": 8080, "targetPort": ADMIN_PORT_NAME, "protocol": "TCP"}]
    monitor = the(objs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == ADMIN_PORT_NAME
    assert monitor["spec"]["endpoints"][0]["path"] == METRICS_PATH
    # The ServiceMonitor selects the Service by its labels.
    service_labels = the(objs, "Service")["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()


def test_service_selects_the_deployments_pods(defaults: list[Obj]) -> None:
    pod_labels = the(defaults, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = the(defaults, "Service")["spec"]["selector"]
    assert selector.items() <= pod_labels.items()
    assert the(defaults, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector


# Grace period and drain -------------------------------------------------------------------------------


def test_grace_period_outlasts_the_drain_by_the_margin(defaults: list[Obj]) -> None:
    assert env(defaults)["MQ_DRAIN_TIMEOUT_S"] == "25"
    assert pod_spec(defaults)["terminationGracePeriodSeconds"] == 25 + 15


@pytest.mark.parametrize(("timeout_s", "margin_s"), [(60, 15), (300, 30)])
def test_grace_period_follows_the_drain_timeout(timeout_s: int, margin_s: int) -> None:
    objs = render(drain={"timeoutSeconds": timeout_s, "marginSeconds": margin_s})
    assert env(objs)["MQ_DRAIN_TIMEOUT_S"] == str(timeout_s)
    assert pod_spec(objs)["terminationGracePeriodSeconds"] == timeout_s + margin_s


@pytest.mark.parametrize(("timeout_s", "wait_s"), [(5, 20), (1, 10)])
def test_grace_period_lets_long_polls_in_flight_return_after_a_short_drain(timeout_s: int, wait_s: int) -> None:
    objs = render(drain={"timeoutSeconds": timeout_s, "marginSeconds": 15}, consumer={"waitTimeSeconds": wait_s})
    assert pod_spec(objs)["terminationGracePeriodSeconds"] == wait_s + 5 + 15


def test_explicit_grace_period_is_kept_when_long_enough() -> None:
    objs = render(terminationGracePeriodSeconds=31)
    assert pod_spec(objs)["terminationGracePeriodSeconds"] == 31


@pytest.mark.parametrize("grace_s", [10, 25, 30])
def test_grace_period_too_short_for_the_drain_is_refused(grace_s: int) -> None:
    message = refusal(queue={"url": QUEUE_URL}, terminationGracePeriodSeconds=grace_s)
    assert f"terminationGracePeriodSeconds ({grace_s}) must exceed the longest shutdown (25 s: " in message


def test_margin_too_small_for_shutdown_is_refused() -> None:
    message = refusal(queue={"url": QUEUE_URL}, drain={"timeoutSeconds": 25, "marginSeconds": 5})
    assert "must exceed the longest shutdown (25 s: drain.timeoutSeconds 25" in message


# Admin token ------------------------------------------------------------------------------------------


def test_no_token_means_a_generated_one_in_the_charts_secret(defaults: list[Obj]) -> None:
    secret = the(defaults, "Secret")
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) == 40
    assert token.isalnum()
    assert env(defaults)["MQ_ADMIN_TOKEN"] == {"secretKeyRef": {"name": secret["metadata"]["name"], "key": "token"}}
    # `helm template` cannot read the cluster (`lookup` finds nothing): each render generates anew. An upgrade
    # reads the token back from the Secret, so no checksum restarts the pods over a token that did not change.
    assert base64.b64decode(the(render(), "Secret")["data"]["token"]).decode() != token
    assert "checksum/admin-token" not in the(defaults, "Deployment")["spec"]["template"]["metadata"].get(
        "annotations", {}
    )


def test_the_secret_keeps_a_generated_token_on_upgrade() -> None:
    template = (CHART / "templates" / "secret.yaml").read_text()
    assert 'lookup "v1" "Secret" .Release.Namespace $name' in template
    assert 'index $existing.data "token" | b64dec' in template


def test_a_given_token_goes_to_the_secret_only() -> None:
    objs = render(admin={"token": "s3cret-s3cret-s3cret"})
    secret = the(objs, "Secret")
    assert base64.b64decode(secret["data"]["token"]) == b"s3cret-s3cret-s3cret"
    assert env(objs)["MQ_ADMIN_TOKEN"] == {"secretKeyRef": {"name": secret["metadata"]["name"], "key": "token"}}
    assert "s3cret-s3cret-s3cret" not in yaml.safe_dump(the(objs, "Deployment"))
    # A changed token restarts the pods, which read it only at start.
    pod_annotations = the(objs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/admin-token" in pod_annotations


@pytest.mark.parametrize("token", ["short", "sixteen chars ok", "t\u00f6ken-t\u00f6ken-t\u00f6ken"])
def test_a_token_the_service_would_refuse_is_refused(token: str) -> None:
    message = refusal(queue={"url": QUEUE_URL}, admin={"token": token})
    assert "admin.token must be at least 16 visible ASCII characters" in message


def test_existing_secret_keeps_the_token_out_of_the_chart() -> None:
    objs = render(admin={"existingSecret": "ops-admin", "existingSecretKey": "bearer"})
    assert "Secret" not in kinds(objs)
    assert env(objs)["MQ_ADMIN_TOKEN"] == {"secretKeyRef": {"name": "ops-admin", "key": "bearer"}}


def test_allowed_hosts_are_loopback_the_pod_ip_the_services_names_and_more() -> None:
    objs = render(admin={"allowedHosts": ["mq.example.com"]})
    hosts = env(objs)["MQ_ADMIN_ALLOWED_HOSTS"].split(",")
    service = the(objs, "Service")["metadata"]["name"]
    assert hosts == [
        "localhost",
        "127.0.0.1",
        "::1",
        "$(K8S_POD_IP)",
        service,
        f"{service}.$(K8S_NAMESPACE_NAME)",
        f"{service}.$(K8S_NAMESPACE_NAME).svc",
        f"{service}.$(K8S_NAMESPACE_NAME).svc.cluster.local",
        "mq.example.com",
    ]
    names = [entry["name"] for entry in container(objs)["env"]]
    # Kubernetes expands $(VAR) only from variables defined before.
    assert names.index("K8S_POD_IP") < names.index("MQ_ADMIN_ALLOWED_HOSTS")
    assert names.index("K8S_NAMESPACE_NAME") < names.index("MQ_ADMIN_ALLOWED_HOSTS")


class _DrainRecorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str | None, str | None, str | None]] = []  # noqa: RUF012 - one test writes, reads

    def do_POST(self) -> None:
        headers = self.headers
        self.seen.append((self.command, self.path, headers["Authorization"], headers["Content-Type"], headers["Host"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads `seen`."""


@pytest.fixture
def drain_server() -> Iterator[http.server.HTTPServer]:
    _DrainRecorder.seen = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _DrainRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.mark.parametrize("admin", [{}, {"existingSecret": "ops-admin"}], ids=["generated token", "existing Secret"])
def test_exec_prestop_hook_posts_the_token_to_drain(drain_server: http.server.HTTPServer, admin: Obj) -> None:
    objs = render(admin=admin)
    command = container(objs)["lifecycle"]["preStop"]["exec"]["command"]
    port = drain_server.server_address[1]
    hook_env = {
        "MQ_ADMIN_PORT": str(port),
        "MQ_ADMIN_TOKEN": "from-secret",
        "MQ_DRAIN_TIMEOUT_S": "5",
        "PATH": os.environ.get("PATH", ""),
    }
    # The image's mq-service is the venv's; here the test's interpreter runs the same entry point.
    assert command == ["mq-service", "drain"]
    hook_env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-m", "service", "drain"], env=hook_env, check=True, timeout=30)
    # POST, JSON, to a loopback Host: what the admin API's guards let through.
    assert _DrainRecorder.seen == [("POST", DRAIN_PATH, "Bearer from-secret", "application/json", f"127.0.0.1:{port}")]


def test_token_and_existing_secret_together_are_refused() -> None:
    message = refusal(queue={"url": QUEUE_URL}, admin={"token": "a", "existingSecret": "b"})
    assert "admin.token and admin.existingSecret are both set" in message


# Configuration contract -------------------------------------------------------------------------------


def test_default_env_is_the_services_configuration(defaults: list[Obj]) -> None:
    assert (
        env(defaults).items()
        >= {
            "MQ_QUEUE_URL": QUEUE_URL,
            "MQ_HANDLER": "handlers.example:router",
            "MQ_CONCURRENCY": "10",
            "MQ_PROCESSOR": "auto",
            "MQ_MAX_NUMBER_OF_MESSAGES": "10",
            "MQ_WAIT_TIME_SECONDS": "20",
            "MQ_VISIBILITY_TIMEOUT": "30",
            "MQ_DELETION_INTERVAL_S": "10",
            "MQ_VISIBILITY_HEARTBEAT": "true",
            "MQ_ENVELOPE": "auto",
            "MQ_CANCEL_ON_LEASE_LOST": "false",
            "MQ_ADMIN_HOST": "0.0.0.0",
            "MQ_ADMIN_PORT": "8080",
            "MQ_DRAIN_TIMEOUT_S": "25",
            "MQ_LOG_LEVEL": "INFO",
            "MQ_LOG_FORMAT": "json",
            "AWS_REGION": "us-east-1",
            "OTEL_SERVICE_NAME": "mq-mq-service",
        }.items()
    )
    # Optional settings stay unset so the service's own defaults apply.
    optional = {"MQ_PUBLISH_QUEUE_URL", "AWS_ENDPOINT_URL_SQS", "OTEL_EXPORTER_OTLP_ENDPOINT"}
    optional.add("MQ_MAX_IN_FLIGHT_PER_GROUP")
    assert not optional & env(defaults).keys()


def test_every_env_value_is_a_string_or_a_reference(defaults: list[Obj]) -> None:
    for entry in container(defaults)["env"]:
        assert isinstance(entry.get("value"), str) or "valueFrom" in entry, entry


def test_values_reach_the_env() -> None:
    objs = render(
        queue={"publishUrl": QUEUE_URL + "-out"},
        aws={"region": "eu-west-1", "sqsEndpointUrl": "http://sqs.local:4566"},
        consumer={
            "processor": "partitioned",
            "concurrency": 32,
            "maxNumberOfMessages": 5,
            "waitTimeSeconds": 0,
            "visibilityTimeout": 300,
            "deletionIntervalSeconds": 2.5,
            "visibilityHeartbeat": False,
            "envelope": "sns",
            "maxMessagesPerSecond": 25,
            "maxInFlightPerGroup": 2,
            "cancelOnLeaseLost": True,
            "handler": "handlers.orders:router",
        },
        log={"level": "DEBUG", "format": "text"},
    )
    assert (
        env(objs).items()
        >= {
            "MQ_PUBLISH_QUEUE_URL": QUEUE_URL + "-out",
            "AWS_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL_SQS": "http://sqs.local:4566",
            "MQ_PROCESSOR": "partitioned",
            "MQ_CONCURRENCY": "32",
            "MQ_MAX_NUMBER_OF_MESSAGES": "5",
            "MQ_WAIT_TIME_SECONDS": "0",
            "MQ_VISIBILITY_TIMEOUT": "300",
            "MQ_DELETION_INTERVAL_S": "2.5",
            "MQ_VISIBILITY_HEARTBEAT": "false",
            "MQ_ENVELOPE": "sns",
            "MQ_MAX_MESSAGES_PER_S": "25",
            "MQ_MAX_IN_FLIGHT_PER_GROUP": "2",
            "MQ_CANCEL_ON_LEASE_LOST": "true",
            "MQ_HANDLER": "handlers.orders:router",
            "MQ_LOG_LEVEL": "DEBUG",
            "MQ_LOG_FORMAT": "text",
        }.items()
    )


def test_otel_settings_and_extra_env_are_passed_through() -> None:
    objs = render(
        otel={
            "endpoint": "http://collector:4318",
            "serviceName": "orders",
            "sampler": "parentbased_traceidratio",
            "samplerArg": "0.1",
            "resourceAttributes": {"deployment.environment": "prod"},
            "extraEnv": [{"name": "OTEL_EXPORTER_OTLP_TIMEOUT", "value": "5000"}],
        },
        extraEnv=[{"name": "FEATURE_X", "value": "on"}],
        envFromSecret="orders-settings",
    )
    variables = env(objs)
    assert variables["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
    assert variables["OTEL_SERVICE_NAME"] == "orders"
    assert variables["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert variables["OTEL_TRACES_SAMPLER_ARG"] == "0.1"
    assert variables["OTEL_EXPORTER_OTLP_TIMEOUT"] == "5000"
    assert variables["FEATURE_X"] == "on"
    attributes = dict(pair.split("=", 1) for pair in variables["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    assert attributes["deployment.environment"] == "prod"
    assert attributes["k8s.pod.name"] == "$(K8S_POD_NAME)"
    # $(VAR) expands only from variables defined earlier in the list.
    names = [e["name"] for e in container(objs)["env"]]
    assert names.index("K8S_POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")
    assert container(objs)["envFrom"] == [{"secretRef": {"name": "orders-settings"}}]


# Refused values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["", None])
def test_missing_queue_url_is_refused(url: str | None) -> None:
    values = {} if url is None else {"queue": {"url": url}}
    assert "queue.url is required" in refusal(**values)


def test_keda_and_hpa_together_are_refused() -> None:
    message = refusal(queue={"url": QUEUE_URL}, keda={"enabled": True}, autoscaling={"enabled": True})
    assert "keda.enabled and autoscaling.enabled are both true" in message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"consumer": {"processor": "fifo"}}, "/consumer/processor"),
        ({"consumer": {"maxNumberOfMessages": 11}}, "/consumer/maxNumberOfMessages"),
        ({"consumer": {"maxNumberOfMessages": 0}}, "/consumer/maxNumberOfMessages"),
        ({"consumer": {"waitTimeSeconds": 21}}, "/consumer/waitTimeSeconds"),
        ({"consumer": {"visibilityTimeout": 43201}}, "/consumer/visibilityTimeout"),
        ({"consumer": {"visibilityTimeout": 0}}, "/consumer/visibilityTimeout"),
        ({"consumer": {"concurrency": 0}}, "/consumer/concurrency"),
        ({"consumer": {"concurrency": "ten"}}, "/consumer/concurrency"),
        ({"log": {"format": "xml"}}, "/log/format"),
        ({"queue": {"ur1": QUEUE_URL}}, "ur1"),
    ],
)
def test_invalid_values_are_refused_by_the_schema(values: Obj, expected: str) -> None:
    message = refusal(**_merge({"queue": {"url": QUEUE_URL}}, values))
    assert "schema" in message
    # Helm 4 names the value /consumer/processor, Helm 3 consumer.processor.
    assert expected in message or expected.lstrip("/").replace("/", ".") in message


def test_deletion_interval_must_be_below_visibility_timeout() -> None:
    message = refusal(queue={"url": QUEUE_URL}, consumer={"visibilityTimeout": 10, "deletionIntervalSeconds": 10})
    assert "consumer.deletionIntervalSeconds (10) must be below consumer.visibilityTimeout (10)" in message


# Autoscaling ------------------------------------------------------------------------------------------


def test_fixed_replicas_without_autoscaling(defaults: list[Obj]) -> None:
    assert the(defaults, "Deployment")["spec"]["replicas"] == 2
    assert not {"ScaledObject", "TriggerAuthentication", "HorizontalPodAutoscaler"} & kinds(defaults)


def test_keda_scales_on_the_queue_with_a_target_derived_from_concurrency() -> None:
    objs = render(consumer={"concurrency": 16}, aws={"region": "eu-west-1"}, keda={"enabled": True})
    assert "replicas" not in the(objs, "Deployment")["spec"]
    scaled = the(objs, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": the(objs, "Deployment")["metadata"]["name"],
    }
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    # KEDA reads trigger metadata as strings.
    assert trigger["metadata"] == {
        "queueURL": QUEUE_URL,
        "queueLength": "16",
        "activationQueueLength": "0",
        "awsRegion": "eu-west-1",
        "scaleOnInFlight": "true",
    }
    auth = the(objs, "TriggerAuthentication")
    assert auth["apiVersion"] == "keda.sh/v1alpha1"
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"], "kind": "TriggerAuthentication"}
    assert auth["spec"] == {"podIdentity": {"provider": "aws"}}


def test_keda_queue_length_and_endpoint_can_be_set() -> None:
    objs = render(
        keda={
            "enabled": True,
            "queueLength": 3,
            "awsEndpoint": "http://sqs.local:4566",
            "scaleOnInFlight": False,
            "triggerAuthentication": {"podIdentity": {"provider": "aws", "identityOwner": "workload"}},
        }
    )
    metadata = the(objs, "ScaledObject")["spec"]["triggers"][0]["metadata"]
    assert metadata["queueLength"] == "3"
    assert metadata["awsEndpoint"] == "http://sqs.local:4566"
    assert metadata["scaleOnInFlight"] == "false"
    assert the(objs, "TriggerAuthentication")["spec"]["podIdentity"]["identityOwner"] == "workload"


def test_keda_with_an_existing_trigger_authentication() -> None:
    objs = render(keda={"enabled": True, "triggerAuthentication": {"create": False, "name": "shared-aws"}})
    assert "TriggerAuthentication" not in kinds(objs)
    trigger = the(objs, "ScaledObject")["spec"]["triggers"][0]
    assert trigger["authenticationRef"]["name"] == "shared-aws"


def test_hpa_scales_on_cpu_without_fixed_replicas() -> None:
    objs = render(autoscaling={"enabled": True, "minReplicas": 3, "maxReplicas": 9})
    assert "replicas" not in the(objs, "Deployment")["spec"]
    hpa = the(objs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "ScaledObject" not in kinds(objs)


# Pod security and placement ---------------------------------------------------------------------------


def test_container_runs_locked_down(defaults: list[Obj]) -> None:
    context = container(defaults)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    pod = pod_spec(defaults)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False


def test_tmp_is_the_only_writable_mount(defaults: list[Obj]) -> None:
    assert container(defaults)["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    [volume] = pod_spec(defaults)["volumes"]
    assert volume["name"] == "tmp"
    assert "emptyDir" in volume


def test_resources_have_requests_and_a_memory_limit(defaults: list[Obj]) -> None:
    resources = container(defaults)["resources"]
    assert resources["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert resources["limits"]["memory"] == "256Mi"


def test_pods_spread_over_zones_and_nodes(defaults: list[Obj]) -> None:
    constraints = pod_spec(defaults)["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in constraints] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    assert {c["whenUnsatisfiable"] for c in constraints} == {"ScheduleAnyway"}
    selector = the(defaults, "Service")["spec"]["selector"]
    assert all(c["labelSelector"]["matchLabels"] == selector for c in constraints)


def test_placement_and_service_account_annotations_pass_through() -> None:
    role = "arn:aws:iam::123456789012:role/orders"
    objs = render(
        serviceAccount={"annotations": {"eks.amazonaws.com/role-arn": role}},
        nodeSelector={"kubernetes.io/arch": "arm64"},
        tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        podAnnotations={"example.com/team": "orders"},
    )
    account = the(objs, "ServiceAccount")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role}
    assert pod_spec(objs)["serviceAccountName"] == account["metadata"]["name"]
    assert pod_spec(objs)["nodeSelector"] == {"kubernetes.io/arch": "arm64"}
    assert pod_spec(objs)["tolerations"][0]["key"] == "dedicated"
    assert the(objs, "Deployment")["spec"]["template"]["metadata"]["annotations"] == {"example.com/team": "orders"}


def test_pod_disruption_budget_allows_one_pod_down(defaults: list[Obj]) -> None:
    assert the(defaults, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_network_policy_admits_listed_peers_to_the_admin_port_only() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    policy = the(render(networkPolicy={"enabled": True, "from": [peer]}), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{"from": [peer], "ports": [{"port": ADMIN_PORT_NAME, "protocol": "TCP"}]}]
    closed = the(render(networkPolicy={"enabled": True}), "NetworkPolicy")
    assert closed["spec"]["ingress"] == []


# Large payloads through S3 ------------------------------------------------------------------------------


def test_large_payloads_are_off_by_default(defaults: list[Obj]) -> None:
    assert not [name for name in env(defaults) if name.startswith("MQ_S3_") or name == "AWS_ENDPOINT_URL_S3"]


def test_s3_values_become_settings_the_service_accepts() -> None:
    from service.app.config import Settings  # noqa: PLC0415 - the chart tests need the service only here

    objs = render(
        s3={"bucket": "orders-payloads", "prefix": "orders/", "thresholdBytes": 0, "deletePayloads": False},
        aws={"s3EndpointUrl": "https://bucket.vpce-0123.s3.eu-west-1.vpce.amazonaws.com"},
    )
    variables = env(objs)
    assert variables["AWS_ENDPOINT_URL_S3"] == "https://bucket.vpce-0123.s3.eu-west-1.vpce.amazonaws.com"
    settings = Settings.from_env(
        {k: kubelet_expanded(v) for k, v in variables.items() if k.startswith("MQ_") and isinstance(v, str)}
    )
    assert (settings.s3_bucket, settings.s3_prefix, settings.s3_threshold_bytes) == ("orders-payloads", "orders/", 0)
    assert not settings.s3_delete_payloads
    assert not settings.s3_legacy_attribute
    assert settings.s3_max_body_bytes == 33_554_432


@pytest.mark.parametrize(
    ("s3", "expected"),
    [
        ({"bucket": "Orders_Payloads"}, "/s3/bucket"),
        ({"bucket": "b-1", "thresholdBytes": 2_000_000}, "/s3/thresholdBytes"),
        ({"bucket": "b-1", "maxBodyBytes": 1000}, "/s3/maxBodyBytes"),
        ({"bucket": "b-1", "deletePayloads": "no"}, "/s3/deletePayloads"),
        ({"bucket": "b-1", "region": "eu-west-1"}, "region"),
    ],
)
def test_bad_s3_values_are_refused(s3: Obj, expected: str) -> None:
    assert expected in refusal(queue={"url": QUEUE_URL}, s3=s3)


# The idempotency guard ------------------------------------------------------------------------------------------


def test_the_idempotency_guard_is_off_by_default(defaults: list[Obj]) -> None:
    assert not [name for name in env(defaults) if name.startswith("MQ_IDEMPOTENCY_")]


def test_idempotency_values_become_settings_the_service_accepts() -> None:
    from service.app.config import Settings  # noqa: PLC0415 - the chart tests need the service only here

    objs = render(
        idempotency={"store": "dynamodb://orders-idempotency", "key": "attribute:order_id", "expiresSeconds": 86400},
        aws={"dynamodbEndpointUrl": "https://dynamodb.eu-west-1.amazonaws.com"},
    )
    variables = env(objs)
    assert variables["AWS_ENDPOINT_URL_DYNAMODB"] == "https://dynamodb.eu-west-1.amazonaws.com"
    settings = Settings.from_env(
        {k: kubelet_expanded(v) for k, v in variables.items() if k.startswith("MQ_") and isinstance(v, str)}
    )
    assert settings.idempotency_store == "dynamodb://orders-idempotency"
    assert settings.idempotency_key == "attribute:order_id"
    assert settings.idempotency_expires_s == 86400


def test_the_idempotency_store_url_can_come_from_a_secret() -> None:
    variables = env(render(idempotency={"existingSecret": "orders-redis", "existingSecretKey": "url"}))
    assert variables["MQ_IDEMPOTENCY_STORE"] == {"secretKeyRef": {"name": "orders-redis", "key": "url"}}
    assert variables["MQ_IDEMPOTENCY_KEY"] == "message_id"


@pytest.mark.parametrize(
    ("idempotency", "expected"),
    [
        ({"store": "postgres://db/x"}, "/idempotency/store"),
        ({"store": "redis://r:6379", "key": "order_id"}, "/idempotency/key"),
        ({"store": "redis://r:6379", "expiresSeconds": 0}, "/idempotency/expiresSeconds"),
    ],
)
def test_bad_idempotency_values_are_refused(idempotency: Obj, expected: str) -> None:
    assert expected in refusal(queue={"url": QUEUE_URL}, idempotency=idempotency)


# Several queues: the queue table ----------------------------------------------------------------------------

# The three-queue values scripts/check-shipping.sh also renders and validates with kubernetes-validate.
QUEUES_VALUES: Obj = yaml.safe_load((CHART / "ci" / "queues-values.yaml").read_text())


def render_queues(**overrides: Any) -> list[Obj]:
    """Render the three-queue values (no queue.url) plus `overrides`."""
    result = _helm_template(_merge(QUEUES_VALUES, overrides))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def queue_table(objs: list[Obj], tmp_path: Path) -> Any:
    """The ConfigMap's TOML read by the service's own loader, with the Deployment's MQ_* env as its defaults."""
    from service.app.queues import read_table  # noqa: PLC0415 - the chart tests need the service only here

    toml = the(objs, "ConfigMap")["data"]["queues.toml"]
    tomllib.loads(toml)  # plain TOML first: a syntax error shows here, not as a service error
    path = tmp_path / "queues.toml"
    path.write_text(toml)
    variables = {k: kubelet_expanded(v) for k, v in env(objs).items() if k.startswith("MQ_") and isinstance(v, str)}
    return read_table(variables, {}, str(path))


def test_queues_render_a_queue_table_the_service_accepts(tmp_path: Path) -> None:
    table = queue_table(render_queues(), tmp_path)
    assert table.names == ["orders", "audit", "payments.fifo"]
    assert table.max_in_flight == 24
    orders, audit, payments = table.queues
    assert orders.url == "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
    assert (orders.weight, orders.settings.concurrency, orders.settings.handler) == (3, 20, "handlers.orders:router")
    assert (audit.settings.handler, audit.settings.processor, audit.settings.envelope) == (
        "handlers.bulk:router",
        "unbounded",
        "sns",
    )
    assert audit.settings.max_messages_per_s == 50
    # What an item leaves out is consumer.*'s, through the MQ_* environment.
    assert payments.settings.handler == "handlers.example:router"
    assert payments.settings.concurrency == 10
    assert (payments.settings.processor, payments.settings.visibility_timeout) == ("partitioned", 120)
    assert payments.settings.max_in_flight_per_group == 1
    assert payments.url.endswith("/payments.fifo")


def test_every_queue_setting_reaches_the_table(tmp_path: Path) -> None:
    item = {
        "name": "all",
        "url": QUEUE_URL,
        "concurrency": 7,
        "maxNumberOfMessages": 4,
        "waitTimeSeconds": 3,
        "visibilityTimeout": 90,
        "deletionIntervalSeconds": 1.5,
        "visibilityHeartbeat": False,
        "envelope": "eventbridge",
        "maxMessagesPerSecond": 12.5,
        "maxInFlightPerGroup": 2,
        "cancelOnLeaseLost": True,
        "processor": "bounded",
    }
    [queue] = queue_table(render_queues(queues=[item], consumer={"maxInFlight": None}), tmp_path).queues
    settings = queue.settings
    assert (settings.concurrency, settings.max_number_of_messages, settings.wait_time_seconds) == (7, 4, 3)
    assert (settings.visibility_timeout, settings.deletion_interval_s) == (90, 1.5)
    assert (settings.visibility_heartbeat, settings.cancel_on_lease_lost) == (False, True)
    assert (settings.envelope, settings.processor) == ("eventbridge", "bounded")
    assert (settings.max_messages_per_s, settings.max_in_flight_per_group) == (12.5, 2)


def test_strings_are_quoted_for_toml(tmp_path: Path) -> None:
    # A URL with characters TOML must escape in a basic string still reaches the service as given.
    url = 'https://sqs.local:4566/000000000000/odd?x="q"&y=\\z'
    [queue] = queue_table(render_queues(queues=[{"name": "odd", "url": url}]), tmp_path).queues
    assert queue.url == url


def test_the_deployment_mounts_the_table_read_only_and_points_mq_config_at_it() -> None:
    objs = render_queues()
    config_map = the(objs, "ConfigMap")
    [volume] = [v for v in pod_spec(objs)["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    [mount] = [m for m in container(objs)["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    [key] = config_map["data"]
    assert env(objs)["MQ_CONFIG"] == f"{mount['mountPath']}/{key}"
    # The table holds every queue's URL: MQ_QUEUE_URL would be ignored, so it is not set.
    assert "MQ_QUEUE_URL" not in env(objs)


def _checksum(objs: list[Obj]) -> str:
    annotations = the(objs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    checksum: str = annotations["checksum/queues"]
    return checksum


def test_a_change_to_a_queue_rolls_the_pods() -> None:
    before = _checksum(render_queues())
    assert _checksum(render_queues()) == before
    changed = [dict(QUEUES_VALUES["queues"][0], concurrency=21), *QUEUES_VALUES["queues"][1:]]
    assert _checksum(render_queues(queues=changed)) != before
    assert _checksum(render_queues(consumer={"maxInFlight": 25})) != before


def test_one_queue_has_no_table(defaults: list[Obj]) -> None:
    assert "ConfigMap" not in kinds(defaults)
    assert "MQ_CONFIG" not in env(defaults)
    assert "checksum/queues" not in the(defaults, "Deployment")["spec"]["template"]["metadata"].get("annotations", {})


def test_keda_gets_a_trigger_per_queue() -> None:
    objs = render_queues(keda={"queueLength": None})
    triggers = the(objs, "ScaledObject")["spec"]["triggers"]
    auth = the(objs, "TriggerAuthentication")["metadata"]["name"]
    assert [t["name"] for t in triggers] == ["orders", "audit", "payments.fifo"]
    assert [t["metadata"]["queueURL"] for t in triggers] == [q["url"] for q in QUEUES_VALUES["queues"]]
    # The queue's queueLength, else its concurrency, else consumer.concurrency.
    assert [t["metadata"]["queueLength"] for t in triggers] == ["20", "10", "5"]
    for trigger in triggers:
        assert trigger["type"] == "aws-sqs-queue"
        assert trigger["authenticationRef"] == {"name": auth, "kind": "TriggerAuthentication"}
        assert trigger["metadata"]["awsRegion"] == "eu-west-1"
        assert trigger["metadata"]["scaleOnInFlight"] == "true"
    with_default = the(render_queues(keda={"queueLength": 8}), "ScaledObject")["spec"]["triggers"]
    assert [t["metadata"]["queueLength"] for t in with_default] == ["8", "8", "5"]


def test_the_grace_period_outlasts_the_longest_wait_of_any_queue() -> None:
    slow = [{"name": "slow", "url": QUEUE_URL, "waitTimeSeconds": 20}]
    objs = render_queues(queues=slow, consumer={"waitTimeSeconds": 1}, drain={"timeoutSeconds": 5})
    assert pod_spec(objs)["terminationGracePeriodSeconds"] == 20 + 5 + 15


@pytest.mark.parametrize(
    ("queues", "expected"),
    [
        ([{"url": QUEUE_URL}], "name"),
        ([{"name": "orders", "url": "orders"}], "/queues/0/url"),
        ([{"name": "orders/x", "url": QUEUE_URL}], "/queues/0/name"),
        ([{"name": "orders", "url": QUEUE_URL, "concurrency": 0}], "/queues/0/concurrency"),
        ([{"name": "orders", "url": QUEUE_URL, "weight": 1001}], "/queues/0/weight"),
        ([{"name": "orders", "url": QUEUE_URL, "processor": "fifo"}], "/queues/0/processor"),
        ([{"name": "orders", "url": QUEUE_URL, "waitTimeSeconds": 21}], "/queues/0/waitTimeSeconds"),
        ([{"name": "orders", "url": QUEUE_URL, "retries": 3}], "retries"),
    ],
)
def test_bad_queues_are_refused_by_the_schema(queues: list[Obj], expected: str) -> None:
    message = refusal(queues=queues)
    assert "schema" in message
    assert expected in message or expected.lstrip("/").replace("/", ".") in message


def test_a_queue_without_a_url_is_refused() -> None:
    message = refusal(
        queues=[{"name": "orders", "url": QUEUE_URL}, {"name": "audit", "handler": "handlers.bulk:router"}]
    )
    # Helm 4 says "at '/queues/1': missing property 'url'", Helm 3 "queues.1: url is required".
    assert "missing property 'url'" in message or "url is required" in message
    assert "/queues/1" in message or "queues.1" in message


def test_two_queues_of_one_name_are_refused() -> None:
    message = refusal(queues=[{"name": "orders", "url": QUEUE_URL}, {"name": "orders", "url": QUEUE_URL + "-2"}])
    assert 'the name "orders" is given to more than one queue' in message


def test_queue_url_beside_queues_is_refused() -> None:
    message = refusal(queue={"url": QUEUE_URL}, queues=[{"name": "orders", "url": QUEUE_URL}])
    assert "queue.url and queues are both set" in message


def test_a_shared_budget_without_queues_is_refused() -> None:
    message = refusal(queue={"url": QUEUE_URL}, consumer={"maxInFlight": 8})
    assert "consumer.maxInFlight shares handler slots among the queues of `queues`" in message


def test_a_queues_deletion_interval_must_be_below_its_visibility_timeout() -> None:
    queues = [{"name": "orders", "url": QUEUE_URL, "visibilityTimeout": 5}]
    message = refusal(queues=queues)
    assert "queues: orders: deletionIntervalSeconds (10) must be below visibilityTimeout (5)" in message
