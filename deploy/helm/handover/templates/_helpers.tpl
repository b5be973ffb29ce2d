{{/* Name of the chart, overridable. */}}
{{- define "handover.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name: release-chart, or the release name alone when it contains the chart name. */}}
{{- define "handover.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels naming this release of the chart. */}}
{{- define "handover.instanceLabels" -}}
app.kubernetes.io/name: {{ include "handover.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels that select the service's pods — not the migration Job's, which must get no traffic. Never
     change them on upgrade (a Deployment's selector is immutable). */}}
{{- define "handover.selectorLabels" -}}
{{ include "handover.instanceLabels" . }}
app.kubernetes.io/component: server
{{- end -}}

{{/* Labels on every object. */}}
{{- define "handover.labels" -}}
{{ include "handover.instanceLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The image reference; a moving tag is refused so every pod of a release runs the same code. */}}
{{- define "handover.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag | toString -}}
{{- if or (eq $tag "latest") (eq $tag "") -}}
{{- fail "image.tag must name a release (not empty, not latest)" -}}
{{- end -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{/* Name of the Secret the pods read their secret variables from. */}}
{{- define "handover.secretName" -}}
{{- default (printf "%s-secrets" (include "handover.fullname" .)) .Values.secret.existingSecret -}}
{{- end -}}

{{/* Seconds from the start of termination until the kubelet kills the pod: preStop, then the service's
     own grace, then the 5 s the process allows itself past that grace, then a margin. */}}
{{- define "handover.terminationGracePeriodSeconds" -}}
{{- $graceSeconds := div (add (int .Values.shutdown.graceMs) 999) 1000 -}}
{{- add (int .Values.shutdown.preStopSleepSeconds) $graceSeconds 5 (int .Values.shutdown.marginSeconds) -}}
{{- end -}}

{{/* Environment shared by the service and the migrations Job. */}}
{{- define "handover.env" -}}
- name: HOST
  value: "0.0.0.0"
- name: PORT
  value: {{ .Values.port | quote }}
- name: HANDOVER_SHUTDOWN_GRACE_MS
  value: {{ .Values.shutdown.graceMs | int | quote }}
{{- if .Values.nodeHeapMiB }}
- name: NODE_OPTIONS
  value: {{ printf "--max-old-space-size=%d" (int .Values.nodeHeapMiB) | quote }}
{{- end }}
{{- range $name, $value := .Values.env }}
{{- if has $name (list "HOST" "PORT" "HANDOVER_SHUTDOWN_GRACE_MS" "NODE_OPTIONS") }}
{{- fail (printf "env.%s is set by the chart (from port, shutdown.graceMs, nodeHeapMiB); set those values instead" $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The autoscaler's behaviour: fast up, slow down (HPA and KEDA take the same structure). */}}
{{- define "handover.scalingBehavior" -}}
scaleUp:
  stabilizationWindowSeconds: {{ .Values.autoscaling.scaleUp.stabilizationWindowSeconds }}
  selectPolicy: Max
  policies:
    - type: Percent
      value: {{ .Values.autoscaling.scaleUp.percent }}
      periodSeconds: {{ .Values.autoscaling.scaleUp.periodSeconds }}
    - type: Pods
      value: {{ .Values.autoscaling.scaleUp.pods }}
      periodSeconds: {{ .Values.autoscaling.scaleUp.periodSeconds }}
scaleDown:
  stabilizationWindowSeconds: {{ .Values.autoscaling.scaleDown.stabilizationWindowSeconds }}
  selectPolicy: Min
  policies:
    - type: Percent
      value: {{ .Values.autoscaling.scaleDown.percent }}
      periodSeconds: {{ .Values.autoscaling.scaleDown.periodSeconds }}
{{- end -}}
