# syntax=docker/dockerfile:1
# Build: docker build -t walvault .
# The runtime image carries PostgreSQL 15's server and client tools so a
# restored data directory can be replayed (pg_ctl, postgres) and checked
# (pg_amcheck, pg_verifybackup) inside the container.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/walvault ./cmd/walvault \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/walvault-push ./cmd/walvault-push

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 postgresql-client-15 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH
COPY --from=build /out/walvault /out/walvault-push /usr/local/bin/
# PostgreSQL refuses to run as root; the image's postgres user owns restores.
USER postgres
WORKDIR /var/lib/postgresql
ENTRYPOINT ["/usr/local/bin/walvault"]
CMD ["--help"]
