{{/*
The release's full name: "<release>" when it already contains the chart's
name, else "<release>-bssiot"; cut to 40 characters so that
"<fullname>-<service>-headless" stays a valid 63-character DNS label.
*/}}
{{- define "bssiot.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A service's resource name. Call with (dict "root" $ "service" "rater"). */}}
{{- define "bssiot.serviceName" -}}
{{- printf "%s-%s" (include "bssiot.fullname" .root) .service -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "bssiot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bssiot
{{- end -}}

{{/* The selector of one service's pods. Call with (dict "root" $ "service" "rater"). */}}
{{- define "bssiot.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{/* A service's image. Call with (dict "root" $ "service" "rater"). */}}
{{- define "bssiot.image" -}}
{{- $img := .root.Values.image -}}
{{- $repo := printf "%s-%s" $img.repositoryPrefix .service -}}
{{- if $img.registry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" $img.registry) $repo -}}
{{- end -}}
{{- printf "%s:%s" $repo (default .root.Chart.AppVersion $img.tag | toString) -}}
{{- end -}}

{{- define "bssiot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bssiot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The catalog JSON the ConfigMap holds. */}}
{{- define "bssiot.catalog" -}}
{{- if .Values.catalog.productsJson -}}
{{- .Values.catalog.productsJson -}}
{{- else -}}
{{- .Files.Get "files/products.json" -}}
{{- end -}}
{{- end -}}

{{/* Seconds the kubelet waits after SIGTERM: preStop + drain + margin. */}}
{{- define "bssiot.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown -}}
{{- $drain := div (add (int64 $s.drainMs) 999) 1000 -}}
{{- add (int64 $s.preStopSeconds) $drain (int64 $s.stopMarginSeconds) -}}
{{- end -}}

{{/*
The bus addresses of every producer, as the pod of service .service sees
them: its own stream listens on all interfaces, the others are dialled
through each producer's headless Service (publishNotReadyAddresses, so a
consumer can catch up from a producer that is not ready yet: readiness waits
for catch-up, and customer and rater follow each other).
*/}}
{{- define "bssiot.busEnv" -}}
{{- $root := .root -}}
{{- $me := .service -}}
{{- if eq $root.Values.bus.mode "nng" -}}
{{- $nng := $root.Values.bus.nng -}}
{{- range $name, $svc := $root.Values.services }}
{{- if and $svc.enabled (ne $name "gateway") }}
{{- $host := "0.0.0.0" }}
{{- if ne $name $me }}
{{- $sn := include "bssiot.serviceName" (dict "root" $root "service" $name) }}
{{- $host = printf "%s-0.%s-headless.%s.svc.%s" $sn $sn $root.Release.Namespace $root.Values.clusterDomain }}
{{- end }}
- name: BSS_BUS_{{ upper $name }}_PUB
  value: {{ printf "tcp://%s:%d" $host (int $nng.pubPort) | quote }}
- name: BSS_BUS_{{ upper $name }}_REP
  value: {{ printf "tcp://%s:%d" $host (int $nng.repPort) | quote }}
{{- end }}
{{- end }}
{{- else if eq $root.Values.bus.mode "kafka" -}}
{{- $k := $root.Values.bus.kafka }}
- name: BSS_BUS
  value: kafka
- name: BSS_KAFKA_BROKERS
  value: {{ required "bus.kafka.brokers is required when bus.mode is kafka" $k.brokers | quote }}
- name: BSS_KAFKA_TOPIC_PREFIX
  value: {{ $k.topicPrefix | quote }}
- name: BSS_KAFKA_GROUP_PREFIX
  value: {{ $k.groupPrefix | quote }}
{{- with $k.securityProtocol }}
- name: BSS_KAFKA_SECURITY_PROTOCOL
  value: {{ . | quote }}
{{- end }}
{{- with $k.saslMechanism }}
- name: BSS_KAFKA_SASL_MECHANISM
  value: {{ . | quote }}
{{- end }}
{{- if $k.existingSecret }}
- name: BSS_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $k.existingSecret | quote }}
      key: {{ $k.usernameKey | quote }}
- name: BSS_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $k.existingSecret | quote }}
      key: {{ $k.passwordKey | quote }}
{{- end }}
{{- if $k.caSecret }}
- name: BSS_KAFKA_SSL_CA_LOCATION
  value: {{ printf "/etc/bssiot/kafka-ca/%s" $k.caKey | quote }}
{{- end }}
{{- range $prop, $value := $k.properties }}
- name: {{ printf "BSS_KAFKA_PROPERTY_%s" ($prop | upper | replace "." "_" | replace "-" "_") }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- else -}}
{{- fail (printf "bus.mode must be nng or kafka, not %q" $root.Values.bus.mode) -}}
{{- end -}}
{{- end -}}
