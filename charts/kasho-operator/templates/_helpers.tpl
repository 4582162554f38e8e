{{/* The release's full name, at most 63 characters (a DNS label), without the chart name twice. */}}
{{- define "kasho-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kasho-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kasho-operator.labels" -}}
{{ include "kasho-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: kasho
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kasho-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kasho-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kasho-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* "true" or "false": leaderElection.enabled, where auto means replicas > 1. */}}
{{- define "kasho-operator.leaderElect" -}}
{{- $enabled := .Values.leaderElection.enabled -}}
{{- if eq (toString $enabled) "auto" -}}
{{- gt (int .Values.replicas) 1 -}}
{{- else -}}
{{- $enabled -}}
{{- end -}}
{{- end -}}

{{- define "kasho-operator.leaseName" -}}
{{- default (include "kasho-operator.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/*
What the operator does to KashoPipelines and their children in a namespace it watches, derived from its client calls
(operator/src/controller/kube.ts, controller.ts); the same rules go into the ClusterRole (all namespaces) or into a
Role per watched namespace. e2e/chart.test.ts runs the operator under these rules and fails on a permission it lacks
or one it never uses.
*/}}
{{- define "kasho-operator.pipelineRules" -}}
# KashoPipelines: listed and watched by the informer, read fresh by every reconcile, and merge-patched to add and
# remove the kasho.io/source-cleanup finalizer and to clear the one-shot annotations.
- apiGroups: [kasho.io]
  resources: [kashopipelines]
  verbs: [get, list, watch, patch]
# The status is written through the status subresource (a PUT carrying the resourceVersion it read).
- apiGroups: [kasho.io]
  resources: [kashopipelines/status]
  verbs: [update]
# Every child has an ownerReference with blockOwnerDeletion: true to its pipeline. Where the
# OwnerReferencesPermissionEnforcement admission plugin is on (OpenShift, hardened clusters), setting that needs
# update on the owner's finalizers subresource.
- apiGroups: [kasho.io]
  resources: [kashopipelines/finalizers]
  verbs: [update]
# Deployments (pg-change-stream, pg-translicator): watched by label, created and updated by server-side apply
# (create and patch), deleted before the source cleanup at deletion.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch, delete]
# StatefulSets (the managed Redis): watched by label, server-side applied, read by name after a switch to an
# external Redis and then deleted.
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, list, watch, create, patch, delete]
# Jobs (preparation, bootstrap): watched by label, read by name for their outcome, created once (never updated),
# deleted when their settings change or a bootstrap is reset.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
# Services (Redis, pg-change-stream, pg-translicator): watched by label, server-side applied, the Redis one deleted
# after a switch to an external Redis.
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch, delete]
# ConfigMaps: the user's transforms ConfigMap read by name; the pipeline's own transforms ConfigMap watched by label
# and server-side applied.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch]
# Secrets are read by name only, never listed or watched: the connection, superuser, Redis and transform Secrets the
# pipeline names. The pipeline's connection Secret is server-side applied; its transform secret is created once.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, patch]
# Events on the pipelines (core/v1 Events; the operator does not use events.k8s.io).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
