{{/* Names, labels and derived numbers shared by every template. */}}

{{- define "relevance.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "relevance.fullname" -}}
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

{{- define "relevance.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "relevance.selectorLabels" -}}
app.kubernetes.io/name: {{ include "relevance.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "relevance.labels" -}}
helm.sh/chart: {{ include "relevance.chart" . }}
{{ include "relevance.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: api
app.kubernetes.io/part-of: relevance
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "relevance.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "relevance.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "relevance.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The service's settings file (RELEVANCE_CONFIG_FILE), rendered as JSON. JSON is also YAML, so the
file reads the same whichever of the two the service's settings loader expects. Explicit chart
values (bundle, variants, A/B map, shadow, drain) win over the free-form .Values.settings map.
*/}}
{{- define "relevance.settings" -}}
{{- $s := deepCopy (.Values.settings | default dict) }}
{{- $_ := set $s "host" "0.0.0.0" }}
{{- $_ := set $s "port" (int .Values.containerPort) }}
{{- $_ := set $s "bundle" .Values.model.bundle }}
{{- $_ := set $s "drain_timeout_s" .Values.drain.timeoutSeconds }}
{{- if .Values.variants }}
{{- $_ := set $s "variants" .Values.variants }}
{{- end }}
{{- if .Values.abBuckets }}
{{- $_ := set $s "ab_buckets" .Values.abBuckets }}
{{- end }}
{{- if .Values.shadow.bundle }}
{{- $_ := set $s "shadow_bundle" .Values.shadow.bundle }}
{{- end }}
{{- $_ := set $s "shadow_sample_rate" .Values.shadow.sampleRate }}
{{- toPrettyJson $s }}
{{- end }}

{{/* preStop sleep + drain timeout + a margin, unless set explicitly. */}}
{{- define "relevance.terminationGracePeriodSeconds" -}}
{{- if .Values.terminationGracePeriodSeconds }}
{{- .Values.terminationGracePeriodSeconds }}
{{- else }}
{{- add (int .Values.drain.preStopSleepSeconds) (ceil .Values.drain.timeoutSeconds | int) 5 }}
{{- end }}
{{- end }}
