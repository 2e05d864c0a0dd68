{{/*
Chart name, cut to 63 characters (the DNS label limit).
*/}}
{{- define "resnet-serving.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: release name + chart name, unless the release name already contains it.
*/}}
{{- define "resnet-serving.fullname" -}}
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

{{- define "resnet-serving.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "resnet-serving.labels" -}}
helm.sh/chart: {{ include "resnet-serving.chart" . }}
{{ include "resnet-serving.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "resnet-serving.selectorLabels" -}}
app.kubernetes.io/name: {{ include "resnet-serving.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "resnet-serving.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "resnet-serving.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Directory TF Serving reads the model from: <mount>/<model name>, holding <version>/saved_model.pb.
*/}}
{{- define "resnet-serving.modelMountPath" -}}/models{{- end }}
{{- define "resnet-serving.modelBasePath" -}}
{{- printf "%s/%s" (include "resnet-serving.modelMountPath" .) .Values.model.name }}
{{- end }}

{{/*
Where the init container reads model.source.caBundle's PEM bundle (CURL_CA_BUNDLE).
*/}}
{{- define "resnet-serving.modelCaBundleDir" -}}/etc/model-ca{{- end }}
{{- define "resnet-serving.modelCaBundleFile" -}}ca-bundle.pem{{- end }}
{{- define "resnet-serving.modelCaBundlePath" -}}
{{- printf "%s/%s" (include "resnet-serving.modelCaBundleDir" .) (include "resnet-serving.modelCaBundleFile" .) }}
{{- end }}

{{/*
The REST path that answers 200 only once the model is loaded (model status answers 200
while it is still LOADING, so it can't tell ready from not ready).
*/}}
{{- define "resnet-serving.modelReadyPath" -}}
{{- printf "/v1/models/%s/metadata" .Values.model.name }}
{{- end }}

{{/*
An image reference from (list IMAGE DEFAULT_TAG): repository@digest when IMAGE.digest pins it
(the tag is then ignored), else repository:tag, the tag defaulting to DEFAULT_TAG.
*/}}
{{- define "resnet-serving.image" -}}
{{- $image := index . 0 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (toString ($image.tag | default (index . 1))) }}
{{- end }}
{{- end }}

{{/*
TensorFlow's thread pools for a CPU limit: resources.limits.cpu rounded up to whole cores
("1" → 1, "1500m" → 2, 2.5 → 3); empty without a limit. With parallelism 0, TensorFlow sizes
its pools from every core of the node (sched_getaffinity), not from the CFS quota a limit sets.
*/}}
{{- define "resnet-serving.cpuLimitThreads" -}}
{{- $limit := toString (((.Values.resources | default dict).limits | default dict).cpu | default "") }}
{{- if $limit }}
{{- if hasSuffix "m" $limit }}
{{- divf (trimSuffix "m" $limit | float64) 1000 | ceil | int }}
{{- else }}
{{- $limit | float64 | ceil | int }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Cross-field checks the JSON schema can't express. Each message names the keys to fix.
*/}}
{{- define "resnet-serving.validate" -}}
{{- $source := .Values.model.source }}
{{- if and $source.uri $source.existingClaim }}
{{- fail "model.source: set either model.source.uri or model.source.existingClaim, not both" }}
{{- end }}
{{- if not (or $source.uri $source.existingClaim) }}
{{- fail "model.source: set model.source.uri (gs://BUCKET/PATH or https://HOST/model.tar.gz) or model.source.existingClaim (a PVC holding <model.name>/<version>/saved_model.pb)" }}
{{- end }}
{{- if $source.uri }}
{{- if not (or (hasPrefix "gs://" $source.uri) (hasPrefix "https://" $source.uri)) }}
{{- fail (printf "model.source.uri: unsupported scheme in %q; use gs://BUCKET/PATH or https://HOST/PATH.tar.gz" $source.uri) }}
{{- end }}
{{- if and (hasPrefix "gs://" $source.uri) (not (regexMatch "^gs://[a-z0-9][a-z0-9._-]{1,221}[a-z0-9](/.*)?$" $source.uri)) }}
{{- fail (printf "model.source.uri: %q is not a valid gs://BUCKET/PATH (bucket names are 3-63 lowercase letters, digits, dots, dashes or underscores)" $source.uri) }}
{{- end }}
{{- if and (hasPrefix "https://" $source.uri) (not (regexMatch "^https://[^?#]+[.](tar[.]gz|tgz)([?].*)?$" $source.uri)) }}
{{- fail (printf "model.source.uri: %q must point to a .tar.gz or .tgz tarball of the version directories (resnet-serving model package makes one)" $source.uri) }}
{{- end }}
{{- end }}
{{- if and ($source.caBundle | default dict).configMap (not (hasPrefix "https://" $source.uri)) }}
{{- fail "model.source.caBundle.configMap: a CA bundle is for https:// model sources only; set model.source.uri to https://HOST/PATH.tar.gz or leave model.source.caBundle.configMap empty" }}
{{- end }}
{{- $hpa := .Values.autoscaling }}
{{- if $hpa.enabled }}
{{- if gt (int $hpa.minReplicas) (int $hpa.maxReplicas) }}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int $hpa.minReplicas) (int $hpa.maxReplicas)) }}
{{- end }}
{{- if eq (include "resnet-serving.requestMode" .) "keda" }}
{{- $min := include "resnet-serving.kedaMinReplicas" . | int }}
{{- if gt $min (int $hpa.maxReplicas) }}
{{- fail (printf "autoscaling.requests.keda.minReplicaCount (%d) must not exceed autoscaling.maxReplicas (%d)" $min (int $hpa.maxReplicas)) }}
{{- end }}
{{- end }}
{{- if eq (include "resnet-serving.requestMode" .) "cpu" }}
{{- if not (or $hpa.targetCPUUtilizationPercentage $hpa.targetMemoryUtilizationPercentage) }}
{{- fail "autoscaling: set autoscaling.targetCPUUtilizationPercentage or autoscaling.targetMemoryUtilizationPercentage, or turn autoscaling.enabled off" }}
{{- end }}
{{- $requests := (.Values.resources | default dict).requests | default dict }}
{{- if and $hpa.targetCPUUtilizationPercentage (not $requests.cpu) }}
{{- fail "resources.requests.cpu is required while autoscaling.targetCPUUtilizationPercentage is set: the HPA measures CPU as a percentage of the request" }}
{{- end }}
{{- if and $hpa.targetMemoryUtilizationPercentage (not $requests.memory) }}
{{- fail "resources.requests.memory is required while autoscaling.targetMemoryUtilizationPercentage is set: the HPA measures memory as a percentage of the request" }}
{{- end }}
{{- end }}
{{- end }}
{{- $batching := .Values.batching }}
{{- with $batching.allowedBatchSizes }}
{{- $previous := 0 }}
{{- range . }}
{{- if le (int .) $previous }}
{{- fail (printf "batching.allowedBatchSizes %v must be strictly increasing: TF Serving refuses to load the model otherwise" $batching.allowedBatchSizes) }}
{{- end }}
{{- $previous = int . }}
{{- end }}
{{- if ne $previous (int $batching.maxBatchSize) }}
{{- fail (printf "batching.allowedBatchSizes %v must end with batching.maxBatchSize (%d): TF Serving refuses to load the model otherwise; make the last size %d or set batching.maxBatchSize to %d" $batching.allowedBatchSizes (int $batching.maxBatchSize) (int $batching.maxBatchSize) $previous) }}
{{- end }}
{{- end }}
{{- if ge (int .Values.preStopSleepSeconds) (int .Values.terminationGracePeriodSeconds) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds (%d), or the server is killed before in-flight requests finish" (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds)) }}
{{- end }}
{{- end }}

{{/*
HPA behavior presets (autoscaling.behaviorPreset); an explicit autoscaling.behavior wins.
responsive: scale up to 4× (or by 4 pods) every 15 s with no stabilization, for spikes; scale
down as the controller's default. conservative: one pod a minute up after a minute of
agreement, one pod every two minutes down after ten, for costly or flapping workloads.
*/}}
{{- define "resnet-serving.behaviorPreset" -}}
{{- if eq .Values.autoscaling.behaviorPreset "responsive" }}
scaleUp:
  stabilizationWindowSeconds: 0
  selectPolicy: Max
  policies:
    - type: Percent
      value: 300
      periodSeconds: 15
    - type: Pods
      value: 4
      periodSeconds: 15
{{- else if eq .Values.autoscaling.behaviorPreset "conservative" }}
scaleUp:
  stabilizationWindowSeconds: 60
  selectPolicy: Min
  policies:
    - type: Pods
      value: 1
      periodSeconds: 60
scaleDown:
  stabilizationWindowSeconds: 600
  policies:
    - type: Pods
      value: 1
      periodSeconds: 120
{{- end }}
{{- end }}

{{/*
How the release scales (autoscaling.metric and autoscaling.requests): `cpu` (the chart's HPA on
resource metrics), `keda` (a ScaledObject; KEDA makes the HPA) or `pods` (the chart's HPA on a
Pods metric from a custom-metrics adapter). values.schema.json allows exactly one request mode
when autoscaling.metric is `requests`.
*/}}
{{- define "resnet-serving.requestMode" -}}
{{- $requests := .Values.autoscaling.requests }}
{{- if ne .Values.autoscaling.metric "requests" }}cpu
{{- else if $requests.keda.enabled }}keda
{{- else }}pods
{{- end }}
{{- end }}

{{/*
The HPA behavior, for the chart's HPA and for the one KEDA makes: autoscaling.behavior when
set, else the autoscaling.behaviorPreset (YAML; empty for the HPA's defaults).
*/}}
{{- define "resnet-serving.behavior" -}}
{{- with (.Values.autoscaling.behavior | default (include "resnet-serving.behaviorPreset" . | fromYaml)) }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
The release's pods as Prometheus' kubernetes_sd relabelling labels them (`namespace`, `pod`: the
prometheus-community `kubernetes-pods` job's and GKE Managed Prometheus' PodMonitoring's
convention): a Deployment's pod is <fullname>-<replicaset hash>-<suffix>.
*/}}
{{- define "resnet-serving.podSelector" -}}
{{- printf "namespace=%q, pod=~%q" .Release.Namespace (printf "%s-[a-z0-9]+-[a-z0-9]+" (include "resnet-serving.fullname" .)) }}
{{- end }}

{{/*
The PromQL query KEDA asks for, the release's total of the signal (the HPA divides it by the
replicas): autoscaling.requests.query, else from signal and window. concurrency: by Little's
law the rate of the latency histogram's sum (µs per second) ÷ 1e6 is the mean number of
requests inside the servers, queued or running. rate: requests per second.
*/}}
{{- define "resnet-serving.requestsQuery" -}}
{{- $requests := .Values.autoscaling.requests }}
{{- if $requests.query }}
{{- $requests.query }}
{{- else if eq $requests.signal "rate" }}
{{- printf "sum(rate(:tensorflow:serving:request_count{%s}[%s]))" (include "resnet-serving.podSelector" .) $requests.window }}
{{- else }}
{{- printf "sum(rate(:tensorflow:serving:request_latency_sum{%s}[%s])) / 1e6" (include "resnet-serving.podSelector" .) $requests.window }}
{{- end }}
{{- end }}

{{/*
Fewest replicas in KEDA mode: autoscaling.requests.keda.minReplicaCount (0 allowed), else
autoscaling.minReplicas.
*/}}
{{- define "resnet-serving.kedaMinReplicas" -}}
{{- $min := .Values.autoscaling.requests.keda.minReplicaCount }}
{{- if kindIs "invalid" $min }}
{{- .Values.autoscaling.minReplicas }}
{{- else }}
{{- $min }}
{{- end }}
{{- end }}
