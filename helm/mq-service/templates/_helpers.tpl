{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "mq-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of every object: the release name, with the chart name unless the release already has it. */}}
{{- define "mq-service.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mq-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mq-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mq-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mq-service.labels" -}}
helm.sh/chart: {{ include "mq-service.chart" . }}
{{ include "mq-service.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: consumer
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "mq-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mq-service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mq-service.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Secret holding MQ_ADMIN_TOKEN: admin.existingSecret, or the chart's own (given or generated token). */}}
{{- define "mq-service.adminSecretName" -}}
{{- if .Values.admin.existingSecret }}
{{- .Values.admin.existingSecret }}
{{- else }}
{{- printf "%s-admin" (include "mq-service.fullname" .) }}
{{- end }}
{{- end }}

{{/* MQ_ADMIN_ALLOWED_HOSTS: loopback, the pod's IP, the Service's names in the pod's namespace, admin.allowedHosts. */}}
{{- define "mq-service.allowedHosts" -}}
{{- $service := include "mq-service.fullname" . }}
{{- $hosts := list "localhost" "127.0.0.1" "::1" "$(K8S_POD_IP)" $service }}
{{- range list "$(K8S_NAMESPACE_NAME)" "$(K8S_NAMESPACE_NAME).svc" "$(K8S_NAMESPACE_NAME).svc.cluster.local" }}
{{- $hosts = append $hosts (printf "%s.%s" $service .) }}
{{- end }}
{{- join "," (concat $hosts .Values.admin.allowedHosts) }}
{{- end }}

{{- define "mq-service.adminSecretKey" -}}
{{- if .Values.admin.existingSecret }}{{ .Values.admin.existingSecretKey }}{{ else }}token{{ end }}
{{- end }}

{{/*
Pod grace period: the preStop POST /drain may take drain.timeoutSeconds; the receive calls still in flight then
get until the same deadline, or consumer.waitTimeSeconds + 5 s if that is later, to return and hand back what
they bring; then the process needs a few seconds to exit. Anything tighter gets the pod SIGKILLed mid-drain.
*/}}
{{- define "mq-service.terminationGracePeriodSeconds" -}}
{{- $drain := int .Values.drain.timeoutSeconds }}
{{- $wait := int (include "mq-service.longestWaitTimeSeconds" .) }}
{{- $longest := max $drain (add $wait 5) }}
{{- $grace := 0 }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- $grace = add $longest (int .Values.drain.marginSeconds) }}
{{- else }}
{{- $grace = int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- if le $grace (add $longest 5) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed the longest shutdown (%d s: drain.timeoutSeconds %d, or the longest waitTimeSeconds %d + 5 for the receive calls in flight) + 5: the pod would be killed before the preStop drain and shutdown finish; raise terminationGracePeriodSeconds or drain.marginSeconds, or lower drain.timeoutSeconds" $grace $longest $drain $wait) }}
{{- end }}
{{- $grace }}
{{- end }}

{{/* Target messages per replica for KEDA: keda.queueLength, else the pod's concurrency. */}}
{{- define "mq-service.kedaQueueLength" -}}
{{- if kindIs "invalid" .Values.keda.queueLength }}
{{- int .Values.consumer.concurrency }}
{{- else }}
{{- int .Values.keda.queueLength }}
{{- end }}
{{- end }}

{{- define "mq-service.triggerAuthenticationName" -}}
{{- default (printf "%s-aws" (include "mq-service.fullname" .)) .Values.keda.triggerAuthentication.name }}
{{- end }}

{{/* Cross-field checks the JSON schema cannot express. Included by the Deployment. */}}
{{- define "mq-service.validate" -}}
{{- if .Values.queues }}
{{- include "mq-service.validateQueues" . }}
{{- else if not .Values.queue.url }}
{{- fail "queue.url is required: the SQS queue URL to consume (MQ_QUEUE_URL), e.g. --set queue.url=https://sqs.us-east-1.amazonaws.com/123456789012/orders; or list several queues in `queues`" }}
{{- else if not (kindIs "invalid" .Values.consumer.maxInFlight) }}
{{- fail "consumer.maxInFlight shares handler slots among the queues of `queues`: set it only with `queues` (one queue: consumer.concurrency)" }}
{{- end }}
{{- if and .Values.keda.enabled .Values.autoscaling.enabled }}
{{- fail "keda.enabled and autoscaling.enabled are both true: choose one autoscaler (both would fight over the replica count)" }}
{{- end }}
{{- if ge (float64 .Values.consumer.deletionIntervalSeconds) (float64 .Values.consumer.visibilityTimeout) }}
{{- fail (printf "consumer.deletionIntervalSeconds (%v) must be below consumer.visibilityTimeout (%v): handled messages would become visible again before their deletion is sent" .Values.consumer.deletionIntervalSeconds .Values.consumer.visibilityTimeout) }}
{{- end }}
{{- if and .Values.admin.token .Values.admin.existingSecret }}
{{- fail "admin.token and admin.existingSecret are both set: give the token one way only" }}
{{- end }}
{{- with .Values.admin.token }}
{{- if or (lt (len .) 16) (not (regexMatch "^[!-~]+$" .)) }}
{{- fail "admin.token must be at least 16 visible ASCII characters (no spaces, control or non-ASCII characters), as the service requires; leave it empty to have the chart generate one" }}
{{- end }}
{{- end }}
{{- if and .Values.keda.enabled (not .Values.keda.triggerAuthentication.create) (not .Values.keda.triggerAuthentication.name) }}
{{- fail "keda.triggerAuthentication.create is false: set keda.triggerAuthentication.name to an existing TriggerAuthentication" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if and .Values.keda.enabled (gt (int .Values.keda.minReplicaCount) (int .Values.keda.maxReplicaCount)) }}
{{- fail "keda.minReplicaCount must not exceed keda.maxReplicaCount" }}
{{- end }}
{{- end }}

{{/* Checks of the `queues` list: names unique, no queue.url beside it, each queue's deletion interval below its
visibility timeout (an item's own value, else consumer.*'s, as the service resolves them). */}}
{{- define "mq-service.validateQueues" -}}
{{- if .Values.queue.url }}
{{- fail "queue.url and queues are both set: with `queues`, list every queue there (queue.url would be ignored) and leave queue.url empty" }}
{{- end }}
{{- $seen := dict }}
{{- range .Values.queues }}
{{- if hasKey $seen .name }}
{{- fail (printf "queues: the name %q is given to more than one queue: each queue's name must be unique (it names the queue in /status, the admin routes and the metrics)" .name) }}
{{- end }}
{{- $_ := set $seen .name true }}
{{- $visibility := ternary $.Values.consumer.visibilityTimeout .visibilityTimeout (kindIs "invalid" .visibilityTimeout) }}
{{- $interval := ternary $.Values.consumer.deletionIntervalSeconds .deletionIntervalSeconds (kindIs "invalid" .deletionIntervalSeconds) }}
{{- if ge (float64 $interval) (float64 $visibility) }}
{{- fail (printf "queues: %s: deletionIntervalSeconds (%v) must be below visibilityTimeout (%v): handled messages would become visible again before their deletion is sent" .name $interval $visibility) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where the pod reads the queue table (MQ_CONFIG), and the ConfigMap that holds it. */}}
{{- define "mq-service.queuesDir" -}}
/etc/mq-service
{{- end }}

{{- define "mq-service.queuesConfigMapName" -}}
{{- printf "%s-queues" (include "mq-service.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The queue table (docs/service.md) from `queues`, as service/app/queues.py reads it: `max_in_flight`, then one
[[queues]] table per item with the TOML names of its settings. Every value is written as JSON, which is valid TOML
for these types (a JSON string is a TOML basic string, escapes included); helm's toToml would write integers as
floats (10.0), which the service refuses. Settings an item leaves out come from the MQ_* environment.
*/}}
{{- define "mq-service.queuesToml" -}}
{{- $names := list
  (list "handler" "handler")
  (list "weight" "weight")
  (list "concurrency" "concurrency")
  (list "processor" "processor")
  (list "maxNumberOfMessages" "max_number_of_messages")
  (list "waitTimeSeconds" "wait_time_seconds")
  (list "visibilityTimeout" "visibility_timeout")
  (list "deletionIntervalSeconds" "deletion_interval_s")
  (list "visibilityHeartbeat" "visibility_heartbeat")
  (list "envelope" "envelope")
  (list "maxMessagesPerSecond" "max_messages_per_s")
  (list "maxInFlightPerGroup" "max_in_flight_per_group")
  (list "cancelOnLeaseLost" "cancel_on_lease_lost") -}}
# The queue table of {{ include "mq-service.fullname" . }}, rendered by the chart from `queues`.
{{- with .Values.consumer.maxInFlight }}
max_in_flight = {{ int64 . }}
{{- end }}
{{- range $queue := .Values.queues }}

[[queues]]
name = {{ $queue.name | toJson }}
url = {{ $queue.url | toJson }}
{{- range $names }}
{{- $value := index $queue (first .) }}
{{- if not (kindIs "invalid" $value) }}
{{ last . }} = {{ $value | toJson }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The longest long poll of any queue: the receive calls in flight at a drain return within it. */}}
{{- define "mq-service.longestWaitTimeSeconds" -}}
{{- $wait := int .Values.consumer.waitTimeSeconds }}
{{- range .Values.queues }}
{{- if not (kindIs "invalid" .waitTimeSeconds) }}
{{- $wait = max $wait (int .waitTimeSeconds) }}
{{- end }}
{{- end }}
{{- $wait }}
{{- end }}

{{/* OTEL_RESOURCE_ATTRIBUTES: the pod's Kubernetes identity, then the user's attributes. */}}
{{- define "mq-service.otelResourceAttributes" -}}
{{- $attrs := list "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" "k8s.pod.name=$(K8S_POD_NAME)" "k8s.node.name=$(K8S_NODE_NAME)" (printf "k8s.deployment.name=%s" (include "mq-service.fullname" .)) }}
{{- range $key, $value := .Values.otel.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%v" $key $value) }}
{{- end }}
{{- join "," $attrs }}
{{- end }}
