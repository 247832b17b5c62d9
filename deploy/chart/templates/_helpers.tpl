{{- define "flux-review.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "flux-review.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "flux-review.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The environment both Deployments share. */}}
{{- define "flux-review.env" -}}
- name: APP_ID
  valueFrom: {secretKeyRef: {name: {{ .Values.existingSecret }}, key: APP_ID}}
- name: PRIVATE_KEY
  valueFrom: {secretKeyRef: {name: {{ .Values.existingSecret }}, key: PRIVATE_KEY}}
- name: WEBHOOK_SECRET
  valueFrom: {secretKeyRef: {name: {{ .Values.existingSecret }}, key: WEBHOOK_SECRET}}
{{- if .Values.redis.enabled }}
- name: REDIS_URL
  value: {{ printf "redis://%s-redis-master:6379/0" .Release.Name | quote }}
{{- else if .Values.existingRedisUrl.name }}
- name: REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ .Values.existingRedisUrl.name }}, key: {{ .Values.existingRedisUrl.key }}}}
{{- end }}
- name: SHUTDOWN_GRACE
  value: {{ .Values.shutdownGrace | quote }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}
