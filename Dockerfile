# The event stream service (`evtstream serve`), configured by environment variables only: see
# README "Container image". BASE is Debian bookworm with Node.js and npm in /usr/local, as the
# official node:<major>-bookworm-slim images are; .ci/container-base.sh makes such an image from
# Debian packages and the npm registry alone.
ARG BASE=docker.io/library/node:26-bookworm-slim

# Compiles the TypeScript sources (dev dependencies, no install scripts: nothing runs here).
FROM ${BASE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# A build behind a TLS-inspecting proxy passes its CA bundle: --secret id=npm_ca,src=FILE.
RUN --mount=type=secret,id=npm_ca \
  if [ -f /run/secrets/npm_ca ]; then export npm_config_cafile=/run/secrets/npm_ca; fi \
  && npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY types/ types/
COPY src/ src/
RUN npx tsc -p tsconfig.build.json && find dist -name '*.map' -delete

# The runtime dependencies only; sqlite3 compiles against the Node.js headers of the base.
FROM ${BASE} AS deps
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
ENV npm_config_nodedir=/usr/local
RUN --mount=type=secret,id=npm_ca \
  if [ -f /run/secrets/npm_ca ]; then export npm_config_cafile=/run/secrets/npm_ca; fi \
  && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm rebuild sqlite3 bufferutil utf-8-validate

FROM ${BASE}
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home evtstream \
  && mkdir /data && chown evtstream:evtstream /data
WORKDIR /app
COPY --from=deps /app/node_modules node_modules/
COPY --from=build /app/dist dist/
COPY package.json LICENSE README.md CHANGELOG.md ./
COPY bin/ bin/
COPY specs/ specs/
COPY sql/ sql/
COPY console/ console/
COPY container/ container/
USER evtstream
WORKDIR /data
ENV NODE_ENV=production EVTSTREAM_HOST=0.0.0.0 EVTSTREAM_PORT=8080
EXPOSE 8080
VOLUME /data
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/container/healthcheck.js"]
ENTRYPOINT ["/app/container/entrypoint.sh"]
