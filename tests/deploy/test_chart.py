#!/usr/bin/python3
"""The Helm chart (k8s/), rendered and checked the way CI would deploy it.

Each case renders the chart with tests/deploy/helmrender (what `helm
template` does, built from Debian's Go packages), then:
  - yamllint on the output (tests/deploy/yamllint.yaml) and on the chart's
    own values files;
  - every object validated as a Kubernetes object (validate_k8s.py: the
    Kubernetes 1.22 schema from python3-kubernetes, plus references);
  - what the chart promises: one replica per StatefulSet with its own
    volume, probes on /healthz and /readyz, the grace period matching the
    shutdown path, the security context, the bus wiring (nng across pods,
    or Kafka with credentials from an existing Secret), the gateway's
    upstreams, the network policy, the catalog and the dashboard.
A template error or an invalid value must fail the render (negative cases),
and the validator must reject broken objects (so a green run means
something). Every BSS_* variable the chart sets must be one the code reads.

Usage: test_chart.py --renderer PATH --out DIR
"""
import argparse
import json
import os
import re
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(REPO, "k8s")
sys.path.insert(0, HERE)
import validate_k8s  # noqa: E402

SERVICES = ["gateway", "customer", "rater", "billing", "settlement", "mypage"]
BACKENDS = [s for s in SERVICES if s != "gateway"]
PORTS = {"gateway": 8088, "customer": 8081, "rater": 8082, "billing": 8083,
         "settlement": 8084, "mypage": 8085}
# Kafka names agreed with the Kafka backend (written alongside this chart).
KAFKA_CONTRACT = {"BSS_BUS", "BSS_KAFKA_BROKERS", "BSS_KAFKA_TOPIC_PREFIX",
                  "BSS_KAFKA_GROUP_PREFIX", "BSS_KAFKA_SECURITY_PROTOCOL",
                  "BSS_KAFKA_SASL_MECHANISM", "BSS_KAFKA_SASL_USERNAME",
                  "BSS_KAFKA_SASL_PASSWORD", "BSS_KAFKA_SSL_CA_LOCATION"}

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def render(args, *extra, name="bssiot", namespace="bss"):
    cmd = [args.renderer, "--chart", CHART, "--name", name, "--namespace", namespace, *extra]
    return subprocess.run(cmd, capture_output=True, text=True)


def render_ok(args, case, *extra, **kw):
    r = render(args, *extra, **kw)
    if not check(r.returncode == 0, f"{case}: render failed: {r.stderr.strip()}"):
        return None
    path = os.path.join(args.out, f"{case}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(r.stdout)
    lint = subprocess.run(["yamllint", "-s", "-c", os.path.join(HERE, "yamllint.yaml"), path],
                          capture_output=True, text=True)
    check(lint.returncode == 0, f"{case}: yamllint:\n{lint.stdout}{lint.stderr}")
    docs, errors = validate_k8s.validate([path])
    check(not errors, f"{case}: invalid objects:\n  " + "\n  ".join(errors))
    print(f"{case}: {len(docs)} objects rendered, linted and valid")
    return [d for _, d in docs]


def objects(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container(sts):
    return sts["spec"]["template"]["spec"]["containers"][0]


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


def env_value(c, name):
    e = env_of(c).get(name)
    return None if e is None else e.get("value")


def source_text():
    """Every C source and header of the services, for the name checks."""
    chunks = []
    for top in ("shared", "gateway", "customer", "rater", "billing", "settlement", "mypage",
                "tools"):
        for root, _, files in os.walk(os.path.join(REPO, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
                        chunks.append(fh.read())
    return "\n".join(chunks)


def check_env_names_are_read(case, docs, source):
    """Every BSS_* the chart sets is read by the code: literally, or through
    the patterns the code builds names from."""
    dynamic = [re.compile(r"^BSS_[A-Z]+_LISTEN$"),          # service.c builds it
               re.compile(r"^BSS_BUS_[A-Z]+_(PUB|REP)$"),   # bus_nng.c builds it
               re.compile(r"^BSS_KAFKA_PROPERTY_[A-Z0-9_]+$")]
    kafka_written = "BSS_KAFKA_BROKERS" in source
    for sts in objects(docs, "StatefulSet").values():
        for name in env_of(container(sts)):
            if not name.startswith("BSS_") or any(p.match(name) for p in dynamic):
                continue
            if name in KAFKA_CONTRACT and not kafka_written:
                continue  # the Kafka backend is not in the tree yet: the contract rules
            check(f'"{name}"' in source or re.search(rf"\b{name}\b", source),
                  f"{case}: {sts['metadata']['name']} sets {name}, which no code reads")


def check_common(case, docs, fullname, namespace, metrics_from=()):
    sts_all = objects(docs, "StatefulSet")
    services = objects(docs, "Service")
    for svc in SERVICES:
        name = f"{fullname}-{svc}"
        sts = sts_all.get(name)
        if not check(sts is not None, f"{case}: no StatefulSet {name}"):
            continue
        spec = sts["spec"]
        pod = spec["template"]["spec"]
        c = container(sts)
        check(spec["replicas"] == 1, f"{case}: {name} has {spec['replicas']} replicas, not 1")
        claims = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])]
        check(claims == ["data"], f"{case}: {name} volume claims {claims}")
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        check(mounts.get("data") == "/var/lib/bssiot" and
              env_value(c, "BSS_DATA_DIR") == "/var/lib/bssiot",
              f"{case}: {name} does not keep its data on its volume")
        check(c["livenessProbe"]["httpGet"]["path"] == "/healthz" and
              c["readinessProbe"]["httpGet"]["path"] == "/readyz",
              f"{case}: {name} probes")
        sc = c["securityContext"]
        check(sc.get("readOnlyRootFilesystem") is True and
              sc.get("allowPrivilegeEscalation") is False and
              pod["securityContext"].get("runAsNonRoot") is True,
              f"{case}: {name} security context {sc}")
        check(mounts.get("tmp") == "/tmp", f"{case}: {name} has no writable /tmp")
        port = c["ports"][0]
        check(port["name"] == "http" and port["containerPort"] == PORTS[svc],
              f"{case}: {name} http port {port}")
        check(env_value(c, f"BSS_{svc.upper()}_LISTEN") == f"0.0.0.0:{PORTS[svc]}",
              f"{case}: {name} listen address")
        ann = spec["template"]["metadata"]["annotations"]
        check(ann.get("prometheus.io/scrape") == "true" and
              ann.get("prometheus.io/port") == str(PORTS[svc]),
              f"{case}: {name} scrape annotations {ann}")
        # Grace period = preStop sleep + drain + margin, and the drain the
        # service is told (BSS_HTTP_DRAIN_MS) is the one counted.
        drain_ms = int(env_value(c, "BSS_HTTP_DRAIN_MS"))
        pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
        grace = pod["terminationGracePeriodSeconds"]
        check(grace >= pre_stop + (drain_ms + 999) // 1000 + 5,
              f"{case}: {name} grace {grace}s is shorter than preStop {pre_stop}s + drain {drain_ms}ms + margin")
        headless = services.get(f"{name}-headless")
        check(headless is not None and headless["spec"].get("publishNotReadyAddresses") is True,
              f"{case}: {name}-headless must publish not-ready pods (bus catch-up before readiness)")
    # The gateway reaches every backend through its Service on the right port.
    gw = container(sts_all[f"{fullname}-gateway"])
    for svc in BACKENDS:
        url = env_value(gw, f"BSS_UPSTREAM_{svc.upper()}")
        m = re.match(r"^http://([^:/]+):(\d+)$", url or "")
        if check(m is not None, f"{case}: gateway upstream for {svc} is {url!r}"):
            target = services.get(m.group(1))
            check(target is not None and
                  any(p["port"] == int(m.group(2)) for p in target["spec"]["ports"]),
                  f"{case}: gateway upstream {url} is not a Service port of the release")
    # Only the gateway reaches the services' HTTP port (and the metrics
    # scrapers the values name).
    for name, np in objects(docs, "NetworkPolicy").items():
        if name.endswith("-gateway"):
            continue
        for rule in np["spec"]["ingress"]:
            ports = {p["port"] for p in rule["ports"]}
            if "http" in ports:
                peers = rule.get("from") or []
                check(peers and all(p.get("podSelector", {}).get("matchLabels", {})
                                    .get("app.kubernetes.io/component") == "gateway"
                                    or p in metrics_from for p in peers),
                      f"{case}: {name} lets more than the gateway reach http: {peers}")
    # The catalog is the repository's.
    with open(os.path.join(REPO, "config", "products.json"), encoding="utf-8") as f:
        repo_catalog = json.load(f)
    cm = objects(docs, "ConfigMap").get(f"{fullname}-catalog")
    if check(cm is not None, f"{case}: no catalog ConfigMap"):
        check(json.loads(cm["data"]["products.json"]) == repo_catalog,
              f"{case}: the catalog ConfigMap differs from config/products.json")
    check(all(d["metadata"].get("namespace") == namespace for d in docs),
          f"{case}: an object outside namespace {namespace}")


def case_default(args, source):
    docs = render_ok(args, "default")
    if docs is None:
        return
    fullname = "bssiot"
    check_common("default", docs, fullname, "bss")
    check_env_names_are_read("default", docs, source)
    sts = objects(docs, "StatefulSet")
    # nng across pods: each service listens on its own stream, dials the
    # others at their pod's stable DNS name through the headless Service.
    for svc in BACKENDS:
        c = container(sts[f"{fullname}-{svc}"])
        check(env_value(c, "BSS_BUS") in (None, "nng"), f"default: {svc} BSS_BUS")
        check(env_value(c, f"BSS_BUS_{svc.upper()}_PUB") == "tcp://0.0.0.0:7001",
              f"default: {svc} publishes on {env_value(c, f'BSS_BUS_{svc.upper()}_PUB')}")
        for other in BACKENDS:
            if other == svc:
                continue
            want = (f"tcp://{fullname}-{other}-0.{fullname}-{other}-headless.bss.svc."
                    f"cluster.local:7002")
            check(env_value(c, f"BSS_BUS_{other.upper()}_REP") == want,
                  f"default: {svc} reaches {other}'s log at "
                  f"{env_value(c, f'BSS_BUS_{other.upper()}_REP')}, want {want}")
        check({p["name"] for p in c["ports"]} == {"http", "bus-pub", "bus-rep"},
              f"default: {svc} ports {c['ports']}")
    # The dashboard: a ConfigMap for Grafana's sidecar, valid JSON, and every
    # metric it charts is one the code exports.
    dash = objects(docs, "ConfigMap").get(f"{fullname}-dashboard")
    if check(dash is not None, "default: no dashboard ConfigMap"):
        check(dash["metadata"]["labels"].get("grafana_dashboard") == "1",
              "default: dashboard not labelled for the sidecar")
        board = json.loads(dash["data"]["bssiot.json"])
        exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
        metrics = set()
        for e in exprs:
            metrics |= set(re.findall(r"\b(bss_[a-z_]+?)(?:_bucket|_sum|_count)?\{", e))
        for m in sorted(metrics):
            check(f'"{m}"' in source, f"default: the dashboard charts {m}, which no code exports")
        titles = " ".join(p["title"].lower() for p in board["panels"])
        for topic in ("requests", "error", "latency", "published", "consumed", "lag",
                      "outbox", "dead letters", "rating"):
            check(topic in titles, f"default: the dashboard has no panel on {topic}")
    check(not objects(docs, "Ingress"), "default: an Ingress though ingress.enabled is false")


def case_kafka(args, source):
    values = os.path.join(CHART, "examples", "values-kafka.yaml")
    docs = render_ok(args, "kafka", "-f", values, name="prod", namespace="bss-prod")
    if docs is None:
        return
    fullname = "prod-bssiot"
    with open(values, encoding="utf-8") as f:
        metrics_from = yaml.safe_load(f)["networkPolicy"]["metricsFrom"]
    check_common("kafka", docs, fullname, "bss-prod", metrics_from)
    check_env_names_are_read("kafka", docs, source)
    sts = objects(docs, "StatefulSet")
    for svc in BACKENDS:
        c = container(sts[f"{fullname}-{svc}"])
        env = env_of(c)
        check(env_value(c, "BSS_BUS") == "kafka", f"kafka: {svc} BSS_BUS")
        check(env_value(c, "BSS_KAFKA_BROKERS", ).startswith("kafka-0."), f"kafka: {svc} brokers")
        check(env_value(c, "BSS_KAFKA_SECURITY_PROTOCOL") == "sasl_ssl" and
              env_value(c, "BSS_KAFKA_SASL_MECHANISM") == "SCRAM-SHA-512",
              f"kafka: {svc} security settings")
        for var, key in (("BSS_KAFKA_SASL_USERNAME", "username"),
                         ("BSS_KAFKA_SASL_PASSWORD", "password")):
            ref = (env.get(var) or {}).get("valueFrom", {}).get("secretKeyRef", {})
            check(ref == {"name": "bssiot-kafka", "key": key},
                  f"kafka: {svc} {var} must come from the existing Secret, got {env.get(var)}")
        check(env_value(c, "BSS_KAFKA_SSL_CA_LOCATION") == "/etc/bssiot/kafka-ca/ca.crt" and
              any(m["mountPath"] == "/etc/bssiot/kafka-ca" for m in c["volumeMounts"]),
              f"kafka: {svc} CA certificate")
        check(env_value(c, "BSS_KAFKA_PROPERTY_MESSAGE_MAX_BYTES") == "2000000",
              f"kafka: {svc} librdkafka property")
        check(not any(n.startswith("BSS_BUS_") for n in env), f"kafka: {svc} has nng addresses")
        check([p["name"] for p in c["ports"]] == ["http"], f"kafka: {svc} exposes bus ports")
        check(c["image"] == f"registry.example.com/bss/bssiot-{svc}:1.2.3-42",
              f"kafka: {svc} image {c['image']}")
    for name in ("billing", "settlement"):
        env = env_of(container(sts[f"{fullname}-{name}"]))
        check(env.get("BSS_SMTP_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef", {})
              .get("name") == "bssiot-smtp", f"kafka: {name} SMTP password not from the Secret")
    gw = objects(docs, "Service")[f"{fullname}-gateway"]
    check(gw["spec"]["type"] == "LoadBalancer", "kafka: gateway Service type")
    ing = objects(docs, "Ingress").get(f"{fullname}-gateway")
    check(ing is not None and ing["spec"]["tls"][0]["secretName"] == "bssiot-tls",
          "kafka: the Ingress")
    np = objects(docs, "NetworkPolicy")[f"{fullname}-gateway"]
    check(np["spec"]["ingress"][0].get("from"), "kafka: gatewayFrom not applied")
    # No secret value is in the rendered output.
    text = yaml.safe_dump_all(docs)
    check("password:" not in text.lower().replace("passwordkey", ""), "kafka: a password in the output")


def case_variants(args):
    """Other value combinations render valid objects."""
    variants = {
        "nodeport-no-mypage": ["--set", "gateway.service.type=NodePort,gateway.service.nodePort=30088",
                               "--set", "services.mypage.enabled=false",
                               "--set", "persistence.storageClass=fast-ssd"],
        "minimal": ["--set", "networkPolicy.enabled=false,dashboard.enabled=false",
                    "--set", "serviceAccount.create=false,metrics.scrapeAnnotations=false"],
        "custom-catalog": ["--set-string",
                           'catalog.productsJson={"products": [{"productCd": "X"\\, "productNm": "X"\\, '
                           '"productTarif": 1\\, "includedMb": 1\\, "perMbRate": 1}]}'],
    }
    for case, extra in variants.items():
        docs = render_ok(args, case, *extra, name="staging")
        if docs is None:
            continue
        names = set(objects(docs, "StatefulSet"))
        if case == "nodeport-no-mypage":
            check("staging-bssiot-mypage" not in names, f"{case}: mypage still deployed")
            gw = container(objects(docs, "StatefulSet")["staging-bssiot-gateway"])
            check(env_value(gw, "BSS_UPSTREAM_MYPAGE") is None, f"{case}: upstream to mypage")
        if case == "minimal":
            check(not objects(docs, "NetworkPolicy") and not objects(docs, "ServiceAccount"),
                  f"{case}: optional objects rendered")
        if case == "custom-catalog":
            cm = objects(docs, "ConfigMap")["staging-bssiot-catalog"]
            check(json.loads(cm["data"]["products.json"])["products"][0]["productCd"] == "X",
                  f"{case}: custom catalog not used")


def case_negative(args):
    """A bad value or a broken template fails the render with a reason."""
    bad = {
        "kafka without brokers": (["--set", "bus.mode=kafka"], "bus.kafka.brokers is required"),
        "unknown bus": (["--set", "bus.mode=zeromq"], "bus.mode must be nng or kafka"),
        "catalog not JSON": (["--set-string", "catalog.productsJson=not json"],
                             "catalog.productsJson must be a JSON object"),
    }
    for case, (extra, reason) in bad.items():
        r = render(args, *extra)
        check(r.returncode != 0 and reason in r.stderr,
              f"negative '{case}': expected a failure naming '{reason}', got "
              f"{r.returncode}: {r.stderr.strip()[:300]}")
    # A template calling an unknown function is a parse error.
    broken = os.path.join(args.out, "broken-chart")
    subprocess.run(["rm", "-rf", broken], check=True)
    subprocess.run(["cp", "-r", CHART, broken], check=True)
    with open(os.path.join(broken, "templates", "zz-broken.yaml"), "w", encoding="utf-8") as f:
        f.write("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ noSuchFunction . }}\n")
    r = subprocess.run([args.renderer, "--chart", broken], capture_output=True, text=True)
    check(r.returncode != 0 and "noSuchFunction" in r.stderr,
          f"negative 'broken template': {r.returncode}: {r.stderr.strip()[:300]}")


def case_validator(args):
    """The validator rejects what the API server would."""
    bad = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: x}
spec:
  replicas: "1"
  serviceName: missing
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: c}}
    spec:
      containers:
        - name: c
          image: i
          imagePullPolicy: Sometimes
          ports: [{name: a-port-name-that-is-too-long, containerPort: 1}]
          env: [{name: N, value: 1}]
          volumeMount: []
---
apiVersion: v1
kind: Service
metadata: {name: Bad_Name}
spec:
  ports: [{name: http}]
"""
    path = os.path.join(args.out, "invalid.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(bad)
    _, errors = validate_k8s.validate([path])
    text = "\n".join(errors)
    for expected in ('spec.replicas: expected an integer', 'unknown field "volumeMount"',
                     'env[0].value: expected a string', 'required field "port"'):
        check(expected in text, f"validator: did not report {expected!r}:\n{text}")
    # The semantic checks need schema-valid objects.
    bad2 = bad.replace('replicas: "1"', "replicas: 1").replace("value: 1", 'value: "1"') \
        .replace("volumeMount: []", "volumeMounts: []").replace("ports: [{name: http}]",
                                                                "ports: [{name: http, port: 80}]")
    with open(path, "w", encoding="utf-8") as f:
        f.write(bad2)
    _, errors = validate_k8s.validate([path])
    text = "\n".join(errors)
    for expected in ("selector does not match", "not a Service of the set",
                     "not an IANA service name", "not a valid Service name"):
        check(expected in text, f"validator: did not report {expected!r}:\n{text}")


def case_chart_files(args):
    with open(os.path.join(REPO, "config", "products.json"), encoding="utf-8") as a, \
            open(os.path.join(CHART, "files", "products.json"), encoding="utf-8") as b:
        check(json.load(a) == json.load(b),
              "k8s/files/products.json differs from config/products.json: copy it over")
    for f in ("values.yaml", "Chart.yaml", os.path.join("examples", "values-kafka.yaml")):
        # Hand-written files need no leading "---" (Helm does not want one).
        config = "{extends: %s, rules: {document-start: disable}}" % os.path.join(HERE, "yamllint.yaml")
        lint = subprocess.run(["yamllint", "-s", "-d", config, os.path.join(CHART, f)],
                              capture_output=True, text=True)
        check(lint.returncode == 0, f"yamllint {f}:\n{lint.stdout}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--renderer", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    source = source_text()
    case_chart_files(args)
    case_default(args, source)
    case_kafka(args, source)
    case_variants(args)
    case_negative(args)
    case_validator(args)
    for f in failures:
        print("FAIL:", f)
    print(f"chart: {'FAILED' if failures else 'passed'} ({len(failures)} failure(s))")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
