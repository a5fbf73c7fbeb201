#!/usr/bin/python3
"""Validates rendered Kubernetes manifests offline, as Kubernetes objects.

kubectl validates against the OpenAPI document a live API server serves, so
`kubectl --dry-run=client` cannot validate without a cluster. The schema
used here instead is the one Debian ships in python3-kubernetes (the
official client, generated from the Kubernetes 1.22 OpenAPI spec): every
model class lists its fields with their JSON names and types
(`openapi_types`, `attribute_map`) and its setters reject a missing required
field or a value outside an enum. For every document this checks:

  - apiVersion/kind is one this chart may use, and metadata.name is set;
  - every field exists in the schema (a typo or a field of another kind is
    an error, as kubectl --validate=strict would report) and has the
    schema's type (a number where a string is required, such as an env
    value, is rejected like the API server's decoder does);
  - required fields are present (the client's own setters say which);
  - what the API server's validation would refuse and is cheap to check:
    DNS names, label keys and values, port names (IANA service names),
    environment variable names, duplicate env names and ports;
  - references inside the rendered set: a StatefulSet's selector matches
    its pod labels and its serviceName is a headless Service of the set;
    a Service selects pods of the set and its named target ports exist on
    them; probes and NetworkPolicies name ports that exist; volume mounts
    name a volume; ConfigMap volumes and Ingress backends name objects of
    the set.

Usage: validate_k8s.py MANIFEST.yaml...   (exit 0: all valid; 1: errors listed)
Must run under Debian's /usr/bin/python3 (python3-kubernetes, python3-yaml).
"""
import re
import sys

import yaml
from kubernetes import client as k8s

KINDS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("networking.k8s.io/v1", "Ingress"): "V1Ingress",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
}
# Resource quantities are strings in the schema but the API accepts numbers.
QUANTITY_MAPS = {"limits", "requests", "capacity", "hard"}

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

_configuration = k8s.Configuration()
_configuration.client_side_validation = True


def _model(name):
    return getattr(k8s, name, None) or getattr(k8s.models, name)


def _setter_error(cls, attr, value):
    """What the client's setter for attr says about value (None: accepted)."""
    obj = cls.__new__(cls)
    obj.local_vars_configuration = _configuration
    for a in cls.openapi_types:
        setattr(obj, "_" + a, None)
    try:
        setattr(obj, attr, value)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


class Validator:
    def __init__(self):
        self.errors = []

    def error(self, where, msg):
        self.errors.append(f"{where}: {msg}")

    def walk(self, value, type_name, path, parent_key=""):
        if value is None:
            return  # null is "unset" for the API server
        if type_name.startswith("list["):
            if not isinstance(value, list):
                return self.error(path, f"expected a list, got {type(value).__name__}")
            for i, item in enumerate(value):
                self.walk(item, type_name[5:-1], f"{path}[{i}]", parent_key)
            return
        if type_name.startswith("dict("):
            if not isinstance(value, dict):
                return self.error(path, f"expected a map, got {type(value).__name__}")
            inner = type_name[type_name.index(",") + 1:-1].strip()
            for k, v in value.items():
                if not isinstance(k, str):
                    self.error(path, f"map key {k!r} is not a string")
                if inner == "str" and parent_key in QUANTITY_MAPS and \
                        isinstance(v, (int, float)) and not isinstance(v, bool):
                    continue
                self.walk(v, inner, f"{path}.{k}", k)
            return
        if type_name == "str" or type_name == "datetime" or type_name == "date":
            if not isinstance(value, str):
                self.error(path, f"expected a string, got {type(value).__name__} {value!r}")
            return
        if type_name == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                self.error(path, f"expected an integer, got {type(value).__name__} {value!r}")
            return
        if type_name == "float":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self.error(path, f"expected a number, got {type(value).__name__} {value!r}")
            return
        if type_name == "bool":
            if not isinstance(value, bool):
                self.error(path, f"expected a boolean, got {type(value).__name__} {value!r}")
            return
        if type_name == "object":  # IntOrString, RawExtension, free-form
            return
        cls = _model(type_name)
        if not isinstance(value, dict):
            return self.error(path, f"expected a {type_name} object, got {type(value).__name__}")
        by_json = {j: a for a, j in cls.attribute_map.items()}
        for key, v in value.items():
            attr = by_json.get(key)
            if attr is None:
                self.error(path, f"unknown field \"{key}\" in {type_name}")
                continue
            t = cls.openapi_types[attr]
            self.walk(v, t, f"{path}.{key}", key)
            if t in ("str", "int") and isinstance(v, (str, int)) and not isinstance(v, bool):
                why = _setter_error(cls, attr, v)
                if why:
                    self.error(f"{path}.{key}", why)
        for attr, j in cls.attribute_map.items():
            if j not in value or value[j] is None:
                if _setter_error(cls, attr, None) is not None:
                    self.error(path, f"required field \"{j}\" of {type_name} is missing")


def check_labels(v, where, labels):
    for k, val in (labels or {}).items():
        prefix, _, name = k.rpartition("/")
        if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
            v.error(where, f"label key {k!r}: bad prefix")
        if len(name) > 63 or not LABEL_NAME.match(name):
            v.error(where, f"label key {k!r}: bad name")
        if not isinstance(val, str) or len(val) > 63 or not LABEL_VALUE.match(val):
            v.error(where, f"label {k}={val!r}: bad value (63 characters of [-A-Za-z0-9_.])")


def pod_spec_of(doc):
    if doc["kind"] in ("StatefulSet", "Deployment"):
        return doc.get("spec", {}).get("template", {}).get("spec", {})
    return None


def pod_labels_of(doc):
    return doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}


def container_ports(pod):
    names, numbers = set(), set()
    for c in pod.get("containers", []):
        for p in c.get("ports", []) or []:
            if p.get("name"):
                names.add(p["name"])
            numbers.add(p.get("containerPort"))
    return names, numbers


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == val for k, val in selector.items())


def semantic_checks(v, docs):
    by_kind = {}
    for where, doc in docs:
        by_kind.setdefault(doc["kind"], []).append((where, doc))
    workloads = by_kind.get("StatefulSet", []) + by_kind.get("Deployment", [])
    services = {d["metadata"]["name"]: d for _, d in by_kind.get("Service", [])}
    configmaps = {d["metadata"]["name"] for _, d in by_kind.get("ConfigMap", [])}
    seen = set()

    for where, doc in docs:
        meta = doc.get("metadata", {})
        name = meta.get("name", "")
        key = (doc["apiVersion"], doc["kind"], meta.get("namespace"), name)
        if key in seen:
            v.error(where, f"duplicate object {doc['kind']} {name}")
        seen.add(key)
        namere = DNS1035_LABEL if doc["kind"] == "Service" else \
            DNS_LABEL if doc["kind"] in ("StatefulSet", "Deployment") else DNS_SUBDOMAIN
        limit = 63 if namere is not DNS_SUBDOMAIN else 253
        if len(name) > limit or not namere.match(name):
            v.error(where, f"metadata.name {name!r} is not a valid {doc['kind']} name")
        check_labels(v, where, meta.get("labels"))
        if doc["kind"] == "ConfigMap":
            size = 0
            for k, val in (doc.get("data") or {}).items():
                if not CONFIGMAP_KEY.match(k):
                    v.error(where, f"ConfigMap key {k!r} is not valid")
                size += len(k) + len(str(val))
            if size > 1048576:
                v.error(where, "ConfigMap larger than 1 MiB")

    for where, doc in workloads:
        spec = doc.get("spec", {})
        pod = pod_spec_of(doc)
        labels = pod_labels_of(doc)
        check_labels(v, where + " pod template", labels)
        if not selects(spec.get("selector", {}).get("matchLabels"), labels):
            v.error(where, "spec.selector does not match the pod template's labels")
        if doc["kind"] == "StatefulSet":
            svc = services.get(spec.get("serviceName"))
            if svc is None:
                v.error(where, f"serviceName {spec.get('serviceName')!r} is not a Service of the set")
            elif svc.get("spec", {}).get("clusterIP") != "None":
                v.error(where, f"serviceName {spec.get('serviceName')!r} is not headless")
        volumes = {vol["name"] for vol in pod.get("volumes", []) or []}
        volumes |= {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", []) or []}
        for vol in pod.get("volumes", []) or []:
            cm = (vol.get("configMap") or {}).get("name")
            if cm and cm not in configmaps:
                v.error(where, f"volume {vol['name']} names ConfigMap {cm!r}, not in the set")
        for c in pod.get("containers", []):
            cw = f"{where} container {c.get('name')}"
            port_names = set()
            for p in c.get("ports", []) or []:
                pn = p.get("name")
                if pn is not None:
                    if len(pn) > 15 or not PORT_NAME.match(pn) or not re.search("[a-z]", pn):
                        v.error(cw, f"port name {pn!r} is not an IANA service name")
                    if pn in port_names:
                        v.error(cw, f"duplicate port name {pn!r}")
                    port_names.add(pn)
            env_names = set()
            for e in c.get("env", []) or []:
                en = e.get("name", "")
                if not ENV_NAME.match(en):
                    v.error(cw, f"env name {en!r} is not valid")
                if en in env_names:
                    v.error(cw, f"env {en} is set twice")
                env_names.add(en)
            for m in c.get("volumeMounts", []) or []:
                if m.get("name") not in volumes:
                    v.error(cw, f"volumeMount {m.get('name')!r} names no volume")
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                if isinstance(port, str) and port not in port_names:
                    v.error(cw, f"{probe} names port {port!r} the container does not have")

    for where, doc in by_kind.get("Service", []):
        selector = doc.get("spec", {}).get("selector") or {}
        targets = [d for _, d in workloads if selects(selector, pod_labels_of(d))]
        if not targets:
            v.error(where, "the selector matches no pod of the set")
        for p in doc.get("spec", {}).get("ports", []) or []:
            tp = p.get("targetPort")
            for d in targets:
                names, numbers = container_ports(pod_spec_of(d))
                if (isinstance(tp, str) and tp not in names) or (isinstance(tp, int) and tp not in numbers):
                    v.error(where, f"targetPort {tp!r} is not a port of {d['metadata']['name']}")

    for where, doc in by_kind.get("NetworkPolicy", []):
        selector = doc.get("spec", {}).get("podSelector", {}).get("matchLabels") or {}
        targets = [d for _, d in workloads if selects(selector, pod_labels_of(d))]
        if not targets:
            v.error(where, "podSelector matches no pod of the set")
        for rule in doc.get("spec", {}).get("ingress", []) or []:
            for p in rule.get("ports", []) or []:
                for d in targets:
                    names, numbers = container_ports(pod_spec_of(d))
                    port = p.get("port")
                    if (isinstance(port, str) and port not in names) or \
                            (isinstance(port, int) and port not in numbers):
                        v.error(where, f"port {port!r} is not a port of {d['metadata']['name']}")

    for where, doc in by_kind.get("Ingress", []):
        for rule in doc.get("spec", {}).get("rules", []) or []:
            for p in (rule.get("http") or {}).get("paths", []) or []:
                backend = (p.get("backend") or {}).get("service") or {}
                svc = services.get(backend.get("name"))
                if svc is None:
                    v.error(where, f"backend Service {backend.get('name')!r} is not in the set")
                    continue
                pn = (backend.get("port") or {}).get("name")
                if pn and pn not in {sp.get("name") for sp in svc["spec"].get("ports", [])}:
                    v.error(where, f"backend port {pn!r} is not a port of {backend['name']}")


def validate(paths):
    v = Validator()
    docs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            try:
                loaded = list(yaml.safe_load_all(f))
            except yaml.YAMLError as exc:
                v.error(path, f"not YAML: {exc}")
                continue
        for i, doc in enumerate(loaded):
            if doc is None:
                continue
            where = f"{path} document {i + 1}"
            if not isinstance(doc, dict):
                v.error(where, "not a mapping")
                continue
            kind = (doc.get("apiVersion"), doc.get("kind"))
            model = KINDS.get(kind)
            if model is None:
                v.error(where, f"apiVersion/kind {kind} is not one the validator knows")
                continue
            name = (doc.get("metadata") or {}).get("name")
            if not name:
                v.error(where, "metadata.name is missing")
                continue
            where = f"{path}: {doc['kind']} {name}"
            v.walk(doc, model, where)
            docs.append((where, doc))
    if not v.errors:
        semantic_checks(v, docs)
    return docs, v.errors


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    docs, errors = validate(argv[1:])
    for e in errors:
        print("invalid:", e)
    if errors:
        print(f"{len(errors)} error(s) in {len(docs)} object(s)")
        return 1
    print(f"{len(docs)} object(s) valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
