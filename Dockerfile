# The errand binary for the production topology (docker-compose.yml): `errand api` and
# `errand worker` against a Temporal cluster and PostgreSQL.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin errand

FROM debian:bookworm-slim
# bubblewrap: the agent sandbox; git: the workspaces; curl: health checks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap git ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/errand /usr/local/bin/errand
COPY playbooks /etc/errand/playbooks
ENV ERRAND__PLAYBOOKS_DIR=/etc/errand/playbooks \
    ERRAND__DATA_DIR=/var/lib/errand
ENTRYPOINT ["errand"]
