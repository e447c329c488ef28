# Kakin: one static binary that runs any set of roles (kakin serve
# --roles=...), migrations (kakin migrate) and the admin commands.
#   docker build -t kakin:dev --build-arg VERSION=$(git describe --always) .
# The build stage's Go is the go.mod version (a test checks they agree).

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/kakin ./cmd/kakin

# Distroless static: no shell, no package manager, CA certificates and
# tzdata only; runs as the unprivileged "nonroot" user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kakin /usr/local/bin/kakin
# The demo price list, for tenants without a price plan; mount your own over
# it (or set KAKIN_PRICE_LIST).
COPY deploy/demo/pricelist.json /etc/kakin/pricelist.json
ENV KAKIN_HTTP_ADDR=0.0.0.0:8080 \
    KAKIN_PRICE_LIST=/etc/kakin/pricelist.json \
    KAKIN_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kakin"]
CMD ["serve"]
