{{/* Chart name, overridable. */}}
{{- define "partyquiz-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, at most 63 characters (DNS label). */}}
{{- define "partyquiz-operator.fullname" -}}
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

{{/*
A name made of the full name and a suffix, within a limit (CronJobs: 52, Services: 63). Too
long, the full name is cut and an 8-character hash of it keeps the result unique.
Call with (dict "context" . "suffix" "metrics" "limit" 63).
*/}}
{{- define "partyquiz-operator.suffixedName" -}}
{{- $full := include "partyquiz-operator.fullname" .context }}
{{- $name := printf "%s-%s" $full .suffix }}
{{- if le (len $name) (int .limit) }}
{{- $name }}
{{- else }}
{{- $keep := sub (int .limit) (add (len .suffix) 10) }}
{{- printf "%s-%s-%s" (trunc (int $keep) $full | trimSuffix "-") (sha256sum $full | trunc 8) .suffix }}
{{- end }}
{{- end }}

{{/* Chart label value. */}}
{{- define "partyquiz-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: never change after install, no version or hash. */}}
{{- define "partyquiz-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "partyquiz-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Common labels. */}}
{{- define "partyquiz-operator.labels" -}}
helm.sh/chart: {{ include "partyquiz-operator.chart" . }}
{{ include "partyquiz-operator.selectorLabels" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: partyquiz
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* ServiceAccount name. */}}
{{- define "partyquiz-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "partyquiz-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference: digest wins over tag; tag defaults to appVersion. */}}
{{- define "partyquiz-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Namespaces watched in namespaced mode. */}}
{{- define "partyquiz-operator.watchNamespaces" -}}
{{- if .Values.watchNamespaces }}
{{- join "," .Values.watchNamespaces }}
{{- else }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
The rules the operator needs, and no more; shared by the Role and the ClusterRole. No
wildcards. The operator lists and watches every kind it indexes, reads by name what it must
check before creating it, writes with server-side apply (patch, create) and deletes only the
kinds it removes. Secrets are only read by name, created and patched, never listed or watched;
the admission policy (admission-policy.yaml) keeps even those writes to its own Secrets.
*/}}
{{- define "partyquiz-operator.rules" -}}
- apiGroups: ["partyquiz.dev"]
  resources: ["partyquizzes"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["partyquiz.dev"]
  resources: ["partyquizzes/status"]
  verbs: ["patch"]
{{- /* Owner references that block their owner's deletion need this (admission). */}}
- apiGroups: ["partyquiz.dev"]
  resources: ["partyquizzes/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch"]
- apiGroups: [""]
  resources: ["services", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs", "cronjobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- /* spec.monitoring: ServiceMonitor and PrometheusRule, when the Prometheus Operator CRDs exist. */}}
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors", "prometheusrules"]
  verbs: ["get", "create", "patch", "delete"]
{{- end }}
