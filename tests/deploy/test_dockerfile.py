#!/usr/bin/python3
"""The Dockerfile, checked without a Docker daemon (none runs on the build
machines, and hadolint is not packaged in Debian).

  - No `# syntax=` parser directive: BuildKit would pull that frontend
    from Docker Hub on every build, on top of the Debian base images.
  - Build and runtime stages are Debian bookworm; the build stage runs the
    project's CMake build; every service of the chart has a target of its
    name that copies bssiot-<service> from the build, exposes the port the
    chart and README give it, sets the matching BSS_<SERVICE>_LISTEN, runs
    as a numeric non-root user, has a HEALTHCHECK on /healthz of that port
    and starts the binary in exec form (so SIGTERM reaches it directly).
  - Every file copied from the build context exists and is not excluded by
    .dockerignore; every binary copied from the build stage is a target the
    CMake build defines and the build stage's `--target` list builds.
  - The runtime stage installs the Debian package of every shared library
    the built binaries link (readelf NEEDED, resolved with dpkg -S), so no
    image misses a library at start.

Usage: test_dockerfile.py --bin-dir BUILD/bin
"""
import argparse
import fnmatch
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PORTS = {"gateway": 8088, "customer": 8081, "rater": 8082, "billing": 8083,
         "settlement": 8084, "mypage": 8085}
BASE_PACKAGES = {"libc6", "libgcc-s1"}  # in every Debian image

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def parse(path):
    """Stages of a Dockerfile: [(name, base, [(instruction, args)])], with
    continuation lines joined and comments dropped."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"\\\n", " ", text)
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.I)
            stages.append((m.group(2), m.group(1), []))
        elif stages:
            stages[-1][2].append((instr, " ".join(args.split())))
    return text, stages


def dockerignore_patterns():
    with open(os.path.join(REPO, ".dockerignore"), encoding="utf-8") as f:
        return [p.strip() for p in f if p.strip() and not p.startswith("#")]


def ignored(path, patterns):
    parts = path.split("/")
    for p in patterns:
        for i in range(1, len(parts) + 1):
            if fnmatch.fnmatch("/".join(parts[:i]), p):
                return True
    return False


def cmake_executables():
    names = set()
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith(("build", ".git", "data"))]
        for f in files:
            if f == "CMakeLists.txt" or f.endswith(".cmake"):
                with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
                    names |= set(re.findall(r"add_executable\(\s*([A-Za-z0-9_-]+)", fh.read()))
    return names


def needed_libraries(binary):
    """{soname: path} of the libraries a binary links directly."""
    r = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True)
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", r.stdout)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    where = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.M))
    return {lib: where.get(lib) for lib in needed}


def packages_of(paths):
    """{path: Debian package} in one dpkg -S call (a call reads the whole
    database). A merged /usr makes a library's path and the path its
    package registered differ, so each is asked in both spellings."""
    candidates = {}
    for path in paths:
        real = os.path.realpath(path)
        for c in (path, "/usr" + path, real, "/usr" + real):
            candidates.setdefault(c, path)
    r = subprocess.run(["dpkg", "-S", *candidates], capture_output=True, text=True)
    found = {}
    for line in r.stdout.splitlines():
        pkg, _, file = line.partition(": ")
        if file in candidates:
            found.setdefault(candidates[file], pkg.split(":")[0])
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    args = ap.parse_args()

    text, stages = parse(os.path.join(REPO, "Dockerfile"))
    by_name = {name: (base, instrs) for name, base, instrs in stages}
    check("build" in by_name and "runtime" in by_name, "Dockerfile: no build or runtime stage")
    check(re.search(r"^#\s*syntax\s*=", text, re.M | re.I) is None,
          "Dockerfile: a '# syntax=' directive makes every BuildKit build pull from Docker Hub")
    check(re.search(r"^ARG DEBIAN_RELEASE=bookworm$", text, re.M) is not None,
          "Dockerfile: not on Debian bookworm")
    build_base, build = by_name.get("build", ("", []))
    check(build_base == "debian:${DEBIAN_RELEASE}", f"Dockerfile: build stage on {build_base}")
    build_run = " ".join(a for i, a in build if i == "RUN")
    check("cmake -S . -B build" in build_run, "Dockerfile: the build stage does not run the CMake build")
    built = set(re.findall(r"\b(bssiot-[a-z]+)\b", build_run.split("--target", 1)[-1]))

    patterns = dockerignore_patterns()
    check(not ignored("CMakeLists.txt", patterns) and not ignored("shared/bus.c", patterns),
          ".dockerignore excludes the sources")
    executables = cmake_executables()
    for name, base, instrs in stages:
        for instr, a in instrs:
            if instr != "COPY":
                continue
            words = a.split()
            if words[0].startswith("--from="):
                for src in words[1:-1]:
                    binary = os.path.basename(src)
                    check(binary in executables, f"Dockerfile: {name} copies {binary}, no CMake target builds it")
                    check(binary in built, f"Dockerfile: {name} copies {binary}, the build stage does not build it")
            else:
                for src in words[:-1]:
                    if src == ".":
                        continue
                    check(os.path.exists(os.path.join(REPO, src)),
                          f"Dockerfile: {name} copies {src}, which does not exist")
                    check(not ignored(src, patterns), f"Dockerfile: {src} is excluded by .dockerignore")

    runtime_base, runtime = by_name.get("runtime", ("", []))
    check(runtime_base == "debian:${DEBIAN_RELEASE}-slim", f"Dockerfile: runtime on {runtime_base}")
    runtime_run = " ".join(a for i, a in runtime if i == "RUN")
    installed = set(re.findall(r"\b(lib[a-z0-9.+-]+|ca-certificates|tzdata|curl)\b",
                               runtime_run.split("install", 1)[-1].split("&&")[0]))
    users = [a for i, a in runtime if i == "USER"]
    check(users and re.match(r"^[1-9][0-9]*:[1-9][0-9]*$", users[-1]),
          f"Dockerfile: runtime user {users} is not a numeric non-root user")
    check("tzdata" in installed, "Dockerfile: no tzdata for BSS_TZ")

    for service, port in PORTS.items():
        if not check(service in by_name, f"Dockerfile: no target {service}"):
            continue
        base, instrs = by_name[service]
        check(base == "runtime", f"Dockerfile: {service} is not built on the runtime stage")
        joined = "\n".join(f"{i} {a}" for i, a in instrs)
        check(f"COPY --from=build /src/build/bin/bssiot-{service} /usr/local/bin/bssiot-{service}" in joined,
              f"Dockerfile: {service} does not copy its binary")
        check(f"EXPOSE {port}" in joined, f"Dockerfile: {service} does not expose {port}")
        check(f"ENV BSS_{service.upper()}_LISTEN=0.0.0.0:{port}" in joined,
              f"Dockerfile: {service} does not listen on 0.0.0.0:{port}")
        check(re.search(rf"HEALTHCHECK .*CMD \[.*\"http://127\.0\.0\.1:{port}/healthz\"\]", joined) is not None,
              f"Dockerfile: {service} has no HEALTHCHECK on /healthz")
        check(f'ENTRYPOINT ["/usr/local/bin/bssiot-{service}"]' in joined,
              f"Dockerfile: {service} does not start its binary in exec form")

    # Runtime libraries: what the binaries built here link must be installed.
    checked = 0
    linked = {}
    for binary in sorted(built):
        path = os.path.join(args.bin_dir, binary)
        if not os.path.exists(path):
            print(f"note: {path} is not built here; its libraries are not checked")
            continue
        libs = needed_libraries(path)
        if any("asan" in lib or "ubsan" in lib for lib in libs):
            print(f"note: {binary} is a sanitizer build; its libraries are not checked")
            continue
        linked[binary] = libs
    packages = packages_of({p for libs in linked.values() for p in libs.values() if p})
    for binary, libs in linked.items():
        for lib, path in libs.items():
            pkg = packages.get(path)
            check(pkg is not None, f"{binary}: cannot tell which package ships {lib}")
            if pkg and pkg not in BASE_PACKAGES:
                check(pkg in installed, f"Dockerfile: {binary} links {lib} from {pkg}, "
                                        f"which the runtime stage does not install")
        checked += 1
    print(f"dockerfile: {len(stages)} stages, {checked} binaries' libraries checked")
    for f in failures:
        print("FAIL:", f)
    print(f"dockerfile: {'FAILED' if failures else 'passed'} ({len(failures)} failure(s))")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
