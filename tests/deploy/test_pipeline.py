#!/usr/bin/python3
"""The Jenkins pipeline and the scripts it calls.

  - The Jenkinsfile has the stages the issue asks for, and every `sh` step
    is one call of a script that exists in the repository (no inline shell
    logic, no pipes, no `&&`), so the pipeline's logic runs outside Jenkins.
  - The image stage builds exactly the services the chart deploys, and the
    file names no credential, registry or cluster (they are parameters).
  - shellcheck passes on every script the pipeline calls and on
    scripts/ci/*.sh.
  - The scripts do what they say, run for real with BSS_CI_DRY_RUN=1 (they
    print the docker/helm commands instead of running them): image.sh tags
    REGISTRY/bssiot-<service>:TAG from the Dockerfile target of that name,
    deploy.sh passes the build's tag and records the revision to roll back
    to, rollback.sh uninstalls a failed first install and rolls back to the
    recorded revision otherwise, and every script refuses to run without
    the parameters it needs.

Usage: test_pipeline.py
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SERVICES = ["gateway", "customer", "rater", "billing", "settlement", "mypage"]
STAGES = ["Checkout", "Dependencies", "Build", "Sanitizer build", "Test", "Benchmarks",
          "Images", "Deploy", "Smoke"]

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def sh_steps(text):
    """The command of every sh step: sh 'x', sh "x", sh(script: 'x', ...)."""
    steps = re.findall(r"""\bsh\s*\(?\s*(?:script:\s*)?(['"])(.*?)\1""", text)
    steps += re.findall(r"""\bsh\s*\([^)]*?\bscript:\s*(['"])(.*?)\1""", text)
    return sorted({cmd for _, cmd in steps})


def test_jenkinsfile():
    with open(os.path.join(REPO, "Jenkinsfile"), encoding="utf-8") as f:
        text = f.read()
    stages = re.findall(r"stage\('([^']+)'\)", text)
    for s in STAGES:
        check(s in stages, f"Jenkinsfile: no stage '{s}'")
    steps = sh_steps(text)
    check(len(steps) >= 8, f"Jenkinsfile: found only {len(steps)} sh steps: {steps}")
    scripts = set()
    for cmd in steps:
        check(not re.search(r"[|;&<>`]|\$\(", cmd), f"Jenkinsfile: sh step '{cmd}' is not one script call")
        words = cmd.split()
        script = words[1] if words[0] == "bash" else words[0]
        path = os.path.join(REPO, script)
        if check(os.path.isfile(path), f"Jenkinsfile: sh step '{cmd}' calls {script}, which does not exist"):
            scripts.add(script)
            check(words[0] == "bash" or os.access(path, os.X_OK),
                  f"Jenkinsfile: {script} is called directly but is not executable")
    check("bash scripts/test.sh" in steps, "Jenkinsfile: the README's test command is not run")
    for s in SERVICES:
        check(f"'{s}'" in text, f"Jenkinsfile: no image for {s}")
    # Nothing site-specific or secret: credentials only through withCredentials
    # with ids from parameters.
    for cid in re.findall(r"credentialsId:\s*([^,)\s]+)", text):
        check(cid.startswith("params."), f"Jenkinsfile: credentials id {cid} is not a parameter")
    check(not re.search(r"(password|token|secret)\s*[:=]\s*['\"][^'\"]+['\"]", text, re.I),
          "Jenkinsfile: a literal credential")
    check(not re.search(r"defaultValue:\s*'[^']*\.(com|net|io|local)", text),
          "Jenkinsfile: a registry or cluster host as a default")
    return scripts


def test_shellcheck(scripts):
    ci = [os.path.join("scripts", "ci", f) for f in sorted(os.listdir(os.path.join(REPO, "scripts", "ci")))
          if f.endswith(".sh")]
    files = sorted(set(ci) | scripts | {"tests/deploy/build_renderer.sh"})
    r = subprocess.run(["shellcheck", "-x", *files], cwd=REPO, capture_output=True, text=True)
    check(r.returncode == 0, f"shellcheck:\n{r.stdout}{r.stderr}")
    print(f"shellcheck: {len(files)} scripts checked")


def run(script, *args, env=None, cwd=None):
    full = {k: v for k, v in os.environ.items()
            if k not in ("REGISTRY", "IMAGE_TAG", "NAMESPACE", "RELEASE", "HELM_VALUES",
                         "REGISTRY_USER", "REGISTRY_PASSWORD")}
    full["BSS_CI_DRY_RUN"] = "1"
    full.update(env or {})
    return subprocess.run(["bash", os.path.join(cwd or REPO, "scripts", "ci", script), *args],
                          capture_output=True, text=True, env=full, cwd=cwd or REPO)


def test_scripts():
    # image.sh: one image per service, from the target of the same name.
    for s in SERVICES:
        r = run("image.sh", s, env={"REGISTRY": "registry.test/bss/", "IMAGE_TAG": "7-abc"})
        check(r.returncode == 0 and
              f"+ docker build --target {s} " in r.stderr and
              f"--tag registry.test/bss/bssiot-{s}:7-abc ." in r.stderr and
              f"+ docker push registry.test/bss/bssiot-{s}:7-abc" in r.stderr,
              f"image.sh {s}: {r.returncode}\n{r.stderr}")
    r = run("image.sh", "nosuch", env={"REGISTRY": "r", "IMAGE_TAG": "t"})
    check(r.returncode != 0 and "must be one of" in r.stderr, f"image.sh accepted an unknown service: {r.stderr}")
    r = run("image.sh", "gateway")
    check(r.returncode != 0 and "REGISTRY is not set" in r.stderr, f"image.sh without REGISTRY: {r.stderr}")
    with open(os.path.join(REPO, "Dockerfile"), encoding="utf-8") as f:
        targets = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", f.read(), re.M | re.I))
    check(set(SERVICES) <= targets, f"Dockerfile targets {targets} lack a service")

    # deploy.sh and rollback.sh, in a scratch copy (they write
    # .deploy-previous-revision into the working tree).
    scratch = tempfile.mkdtemp(prefix="bss-pipeline-")
    try:
        shutil.copytree(os.path.join(REPO, "scripts"), os.path.join(scratch, "scripts"))
        env = {"NAMESPACE": "bss-staging", "IMAGE_TAG": "42-deadbeef", "REGISTRY": "registry.test/bss",
               "HELM_VALUES": "/secrets/site.yaml"}
        r = run("deploy.sh", env=env, cwd=scratch)
        check(r.returncode == 0 and
              "+ helm upgrade --install bssiot k8s --namespace bss-staging --create-namespace "
              "--values /secrets/site.yaml --set-string image.registry=registry.test/bss "
              "--set-string image.tag=42-deadbeef --wait --timeout 10m" in r.stderr,
              f"deploy.sh: {r.returncode}\n{r.stderr}")
        with open(os.path.join(scratch, ".deploy-previous-revision"), encoding="utf-8") as f:
            check(f.read().strip() == "0", "deploy.sh did not record revision 0 for a new release")
        r = run("rollback.sh", env={"NAMESPACE": "bss-staging"}, cwd=scratch)
        check(r.returncode == 0 and "+ helm uninstall bssiot --namespace bss-staging --wait" in r.stderr,
              f"rollback.sh after a first install: {r.stderr}")
        with open(os.path.join(scratch, ".deploy-previous-revision"), "w", encoding="utf-8") as f:
            f.write("7\n")
        r = run("rollback.sh", env={"NAMESPACE": "bss-staging", "RELEASE": "bss"}, cwd=scratch)
        check(r.returncode == 0 and "+ helm rollback bss 7 --namespace bss-staging --wait" in r.stderr,
              f"rollback.sh to revision 7: {r.stderr}")
        os.remove(os.path.join(scratch, ".deploy-previous-revision"))
        r = run("rollback.sh", env={"NAMESPACE": "bss-staging"}, cwd=scratch)
        check(r.returncode != 0 and "deploy.sh did not run" in r.stderr,
              f"rollback.sh without a recorded revision: {r.returncode} {r.stderr}")
        r = run("deploy.sh", env={"NAMESPACE": "x", "REGISTRY": "r"}, cwd=scratch)
        check(r.returncode != 0 and "IMAGE_TAG is not set" in r.stderr, f"deploy.sh without IMAGE_TAG: {r.stderr}")
    finally:
        shutil.rmtree(scratch)

    r = run("build.sh", "debug")
    check(r.returncode != 0 and "unknown flavor" in r.stderr, f"build.sh debug: {r.stderr}")
    r = run("build.sh", "asan")
    check(r.returncode == 0 and "-DBSS_SANITIZE=ON" in r.stderr and "build-asan" in r.stderr,
          f"build.sh asan: {r.stderr}")
    r = subprocess.run(["bash", "scripts/ci/image-tag.sh"], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, "BUILD_NUMBER": "42"})
    check(r.returncode == 0 and re.match(r"^42-[0-9a-z]+$", r.stdout.strip()),
          f"image-tag.sh: {r.stdout!r} {r.stderr}")


def main():
    scripts = test_jenkinsfile()
    test_shellcheck(scripts)
    test_scripts()
    for f in failures:
        print("FAIL:", f)
    print(f"pipeline: {'FAILED' if failures else 'passed'} ({len(failures)} failure(s))")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
