# bssiot's images: one multi-stage build, one image per service.
#
#   docker build --target customer -t REGISTRY/bssiot-customer:TAG .
#
# Targets: gateway, customer, rater, billing, settlement, mypage (the read
# model). The build stage compiles the whole tree with the same CMake build
# as the README (RelWithDebInfo, -Wall -Wextra -Werror); each service image
# is Debian bookworm-slim with the Debian runtime libraries and that one
# binary, runs as the unprivileged user 10001 with its data in
# /var/lib/bssiot (a volume in Kubernetes, the root filesystem stays
# read-only), listens on all interfaces on its fixed port, the one the Helm
# chart uses (gateway 8088, customer 8081, rater 8082, billing 8083,
# settlement 8084, mypage 8085; not the launcher's BSS_PORT+k, so the gateway
# needs BSS_UPSTREAM_<SERVICE> pointing at the service containers), and
# checks itself on /healthz. scripts/ci/image.sh builds and pushes them;
# scripts/ci/image-smoke.sh runs and checks built images on a Docker host.
#
# No "# syntax=" line on purpose: with it BuildKit pulls the
# docker/dockerfile frontend from Docker Hub on every build. Nothing here
# needs more than the builder's built-in frontend, so the two Debian base
# images are all a build pulls (a registry mirror can serve them).

ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libnng-dev librdkafka-dev libsqlite3-dev libcjson-dev libcivetweb-dev \
      libcurl4-openssl-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build build -j"$(nproc)" --target \
      bssiot-gateway bssiot-admin bssiot-customer bssiot-rater bssiot-billing \
      bssiot-settlement bssiot-mypage \
 && strip --strip-debug build/bin/bssiot-*

# What every service image shares: the runtime libraries the binaries link
# (tests/deploy/test_dockerfile.py checks this list against the built
# binaries), time zones for BSS_TZ, CA certificates for SMTPS/HTTPS/Kafka TLS,
# and curl for the HEALTHCHECK.
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libnng1 librdkafka1 libsqlite3-0 libcjson1 libcivetweb1 libcurl4 libssl3 \
      ca-certificates tzdata curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 bssiot \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/bssiot \
      --shell /usr/sbin/nologin bssiot \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/bssiot
COPY config/products.json /etc/bssiot/catalog/products.json
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="bssiot" \
      org.opencontainers.image.description="Event-sourced BSS for IoT data lines" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV BSS_DATA_DIR=/var/lib/bssiot \
    BSS_CATALOG=/etc/bssiot/catalog/products.json \
    SQLITE_TMPDIR=/tmp
WORKDIR /var/lib/bssiot
USER 10001:10001

FROM runtime AS customer
COPY --from=build /src/build/bin/bssiot-customer /usr/local/bin/bssiot-customer
ENV BSS_CUSTOMER_LISTEN=0.0.0.0:8081
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8081/healthz"]
ENTRYPOINT ["/usr/local/bin/bssiot-customer"]

FROM runtime AS rater
COPY --from=build /src/build/bin/bssiot-rater /usr/local/bin/bssiot-rater
ENV BSS_RATER_LISTEN=0.0.0.0:8082
EXPOSE 8082
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8082/healthz"]
ENTRYPOINT ["/usr/local/bin/bssiot-rater"]

FROM runtime AS billing
COPY --from=build /src/build/bin/bssiot-billing /usr/local/bin/bssiot-billing
ENV BSS_BILLING_LISTEN=0.0.0.0:8083
EXPOSE 8083
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8083/healthz"]
ENTRYPOINT ["/usr/local/bin/bssiot-billing"]

FROM runtime AS settlement
COPY --from=build /src/build/bin/bssiot-settlement /usr/local/bin/bssiot-settlement
ENV BSS_SETTLEMENT_LISTEN=0.0.0.0:8084
EXPOSE 8084
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8084/healthz"]
ENTRYPOINT ["/usr/local/bin/bssiot-settlement"]

FROM runtime AS mypage
COPY --from=build /src/build/bin/bssiot-mypage /usr/local/bin/bssiot-mypage
ENV BSS_MYPAGE_LISTEN=0.0.0.0:8085
EXPOSE 8085
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8085/healthz"]
ENTRYPOINT ["/usr/local/bin/bssiot-mypage"]

# The gateway also carries bssiot-admin, which issues API tokens into the
# gateway's store: kubectl exec ... -- bssiot-admin ...
FROM runtime AS gateway
COPY --from=build /src/build/bin/bssiot-gateway /usr/local/bin/bssiot-gateway
COPY --from=build /src/build/bin/bssiot-admin /usr/local/bin/bssiot-admin
ENV BSS_GATEWAY_LISTEN=0.0.0.0:8088
EXPOSE 8088
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8088/healthz"]
ENTRYPOINT ["/usr/local/bin/bssiot-gateway"]
