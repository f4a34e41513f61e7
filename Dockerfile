# The fw registry as a container: `docker build -t fw-registry .`; how to run it (one node or several
# replicas on R2/S3) is in docs/deploy.md.

ARG NODE_IMAGE=node:24-bookworm-slim

# Build: install the workspace from the lockfile, build the fw CLI and what it depends on, then
# `pnpm deploy` it into a folder of its own with production dependencies only.
FROM ${NODE_IMAGE} AS build
# Pinned as in tooling/dev (not in package.json: pnpm would then lock its own binary for every platform).
ARG PNPM_VERSION=12.21.0
ENV CI=true TURBO_TELEMETRY_DISABLED=1 COREPACK_INTEGRITY_KEYS=0
RUN npm install --global --no-audit --no-fund --loglevel=error "pnpm@${PNPM_VERSION}"
WORKDIR /src
# The lockfile alone is enough to download every package, so this layer is reused until it changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline \
  && pnpm turbo run build --filter=@fw/cli... --output-logs=errors-only \
  && pnpm deploy --filter=@fw/cli --prod /out/fw

# Run: Node and the deployed CLI, as the unprivileged `node` user of the base image.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
  FW_HOST=0.0.0.0 \
  FW_PORT=4873 \
  FW_LOG_FORMAT=json
COPY --from=build /out/fw /opt/fw
# The working directory is where fw looks for fw.config.json5 and .env.registry (mount them here, or
# point FW_CONFIG at a mounted file), and where fs storage defaults to ./storage (mount a volume there).
WORKDIR /srv/fw
RUN mkdir -p /srv/fw/storage && chown -R node:node /srv/fw
USER node
EXPOSE 4873
# Liveness only; load balancers should also probe /-/ready, which checks storage.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.FW_PORT || 4873}/-/health`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node is PID 1 here: fw handles SIGTERM and SIGINT itself (stops accepting, finishes in-flight
# requests and pending audit writes, then exits; forced after 30 s).
ENTRYPOINT ["node", "/opt/fw/dist/fw.js"]
CMD ["registry", "start"]
