{{/*
Chart name, cut to 63 characters (the DNS label limit).
*/}}
{{- define "locust.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: release name + chart name, unless the release name already contains it.
*/}}
{{- define "locust.fullname" -}}
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

{{- define "locust.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "locust.labels" -}}
helm.sh/chart: {{ include "locust.chart" . }}
{{ include "locust.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "locust.selectorLabels" -}}
app.kubernetes.io/name: {{ include "locust.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "locust.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "locust.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "locust.masterName" -}}{{ include "locust.fullname" . }}-master{{- end }}

{{/*
Workers the headless master waits for before it starts.
*/}}
{{- define "locust.expectedWorkers" -}}
{{- if .Values.worker.autoscaling.enabled }}{{ .Values.worker.autoscaling.minReplicas }}{{ else }}{{ .Values.worker.replicas }}{{ end }}
{{- end }}

{{/*
Settings the locustfile reads, the same on master and workers.
*/}}
{{- define "locust.env" -}}
- name: PREDICT_PROTOCOL
  value: {{ .Values.loadtest.protocol | quote }}
- name: MODEL_NAME
  value: {{ .Values.loadtest.modelName | quote }}
- name: SIGNATURE_NAME
  value: {{ .Values.loadtest.signatureName | quote }}
- name: IMAGES_DIR
  value: /mnt/locust/images
{{- with .Values.loadtest.shape }}
- name: LOAD_SHAPE
  value: {{ eq . "file" | ternary "file:/mnt/locust/shape/shape.csv" . | quote }}
{{- end }}
- name: SPAWN_RATE
  value: {{ .Values.loadtest.spawnRate | quote }}
- name: HOME
  value: /tmp
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
{{- range $name, $value := .Values.loadtest.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}

{{- define "locust.volumeMounts" -}}
- name: locustfile
  mountPath: /mnt/locust/code
  readOnly: true
- name: images
  mountPath: /mnt/locust/images
  readOnly: true
{{- if eq .Values.loadtest.shape "file" }}
- name: shape
  mountPath: /mnt/locust/shape
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "locust.volumes" -}}
- name: locustfile
  configMap:
    name: {{ include "locust.fullname" . }}-locustfile
    items:  # every module the ConfigMap carries (the locustfile imports those beside it)
      {{- range $path, $_ := .Files.Glob "files/*.py" }}
      - key: {{ base $path }}
        path: {{ base $path }}
      {{- end }}
- name: images
  configMap:
    name: {{ include "locust.fullname" . }}-images
{{- if eq .Values.loadtest.shape "file" }}
- name: shape
  configMap:
    name: {{ include "locust.fullname" . }}-locustfile
    items:
      - key: shape.csv
        path: shape.csv
{{- end }}
- name: tmp
  emptyDir: {}
{{- end }}

{{/*
Pod-level settings shared by master and workers.
*/}}
{{- define "locust.podSpecCommon" -}}
serviceAccountName: {{ include "locust.serviceAccountName" . }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: {{ .Values.serviceAccount.automount }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "locust.volumes" . | nindent 2 }}
{{- end }}

{{/*
Pod template metadata for a component (master or worker).
*/}}
{{- define "locust.podMetadata" -}}
{{- $root := index . 0 }}{{- $component := index . 1 -}}
annotations:
  checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
  {{- if eq $component "worker" }}
  # a worker's scratch space: the cluster autoscaler may move it off an underused node (the
  # master's results volume keeps the master where it is until its run completes)
  cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes: "tmp"
  {{- end }}
  {{- with $root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
labels:
  {{- include "locust.labels" $root | nindent 2 }}
  app.kubernetes.io/component: {{ $component }}
  {{- with $root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/*
Cross-field checks the JSON schema can't express. Each message names the keys to fix.
*/}}
{{- define "locust.validate" -}}
{{- if not .Values.loadtest.host }}
{{- fail "loadtest.host: set the model server address, e.g. http://resnet-serving:8501 (REST) or resnet-serving:8500 (gRPC)" }}
{{- end }}
{{- if and (eq .Values.loadtest.shape "file") (not .Values.loadtest.shapeFile) }}
{{- fail "loadtest.shapeFile: loadtest.shape is file, so give the CSV (header seconds,users) in loadtest.shapeFile" }}
{{- end }}
{{- if and .Values.loadtest.headless .Values.worker.autoscaling.enabled }}
{{- fail "worker.autoscaling.enabled: a headless run's workers are a Job of worker.replicas pods that end with the run; autoscale workers only with loadtest.headless=false (the web UI)" }}
{{- end }}
{{- if and .Values.worker.autoscaling.enabled (gt (int .Values.worker.autoscaling.minReplicas) (int .Values.worker.autoscaling.maxReplicas)) }}
{{- fail (printf "worker.autoscaling.minReplicas (%d) must not exceed worker.autoscaling.maxReplicas (%d)" (int .Values.worker.autoscaling.minReplicas) (int .Values.worker.autoscaling.maxReplicas)) }}
{{- end }}
{{- end }}

{{/*
A headless run's Job names: the Service name stays, the Jobs carry a short hash of both pod
templates (a Job's template is immutable). An upgrade that changes either pod is a new run:
new Jobs, and helm deletes the old ones; an upgrade that changes neither leaves them alone.
*/}}
{{- define "locust.runHash" -}}
{{- printf "%s\n---\n%s" (include "locust.masterPodTemplate" .) (include "locust.workerPodTemplate" .) | sha256sum | trunc 8 }}
{{- end }}

{{- define "locust.masterJobName" -}}
{{- printf "%s-master" (include "locust.fullname" .) | trunc 54 | trimSuffix "-" }}-{{ include "locust.runHash" . }}
{{- end }}

{{- define "locust.workerJobName" -}}
{{- printf "%s-worker" (include "locust.fullname" .) | trunc 54 | trimSuffix "-" }}-{{ include "locust.runHash" . }}
{{- end }}

{{/*
Worker arguments, the same in both modes. Workers end 0 after the master's quit message.
*/}}
{{- define "locust.workerArgs" -}}
- -f
- /mnt/locust/code/locustfile.py
- --worker
- --master-host={{ include "locust.masterName" . }}
- --master-port={{ .Values.service.masterPort }}
- --exit-code-on-error=0
{{- end }}
