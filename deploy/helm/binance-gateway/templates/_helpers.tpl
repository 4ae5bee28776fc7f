{{/* The chart's name, and the objects' name: the release name when it already names the chart. */}}
{{- define "binance-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "binance-gateway.fullname" -}}
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

{{/* What selects the pods: the name, and the release, so two releases never share pods. */}}
{{- define "binance-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "binance-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "binance-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "binance-gateway.selectorLabels" . }}
app.kubernetes.io/part-of: binance-gateway
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "binance-gateway.configName" -}}
{{- printf "%s-config" (include "binance-gateway.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
