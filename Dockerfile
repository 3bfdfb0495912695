# syntax=docker/dockerfile:1
# The gateway image: built in a full Rust image, run from a small Debian one as a
# non-root user. Unexercised here (no Docker engine on the build machines);
# scripts/cluster.sh runs the same topology as plain processes. See docs/deployment.md.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY bench/floor-proxy bench/floor-proxy
COPY scripts/release-pgo.sh scripts/release-pgo.sh
COPY scripts/lib scripts/lib
# A profile-guided build: the gateway is built instrumented, trained on loopback in front
# of the mock upstream, and built again with the profile (see bench/README.md). Set
# --build-arg PGO=0 for a plain release build (about half the build time).
ARG PGO=1
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    if [ "$PGO" = 1 ]; then \
        scripts/release-pgo.sh && cp target/pgo/tokenhub /tokenhub; \
    else \
        cargo build --release --locked -p tokenhub && cp target/release/tokenhub /tokenhub; \
    fi

FROM debian:bookworm-slim AS runtime
# CA roots for upstream HTTPS; curl for the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/tokenhub --create-home tokenhub
COPY --from=build /tokenhub /usr/local/bin/tokenhub
USER tokenhub
WORKDIR /var/lib/tokenhub
# The spill file keeps usage records through a database outage: give it a volume.
ENV TOKENHUB_LISTEN=0.0.0.0:3000 \
    TOKENHUB_LOG_FORMAT=json \
    TOKENHUB_LEDGER_SPILL_PATH=/var/lib/tokenhub/ledger.spill
VOLUME ["/var/lib/tokenhub"]
EXPOSE 3000
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:3000/readyz >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/tokenhub"]
CMD ["serve"]
