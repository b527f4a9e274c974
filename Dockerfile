# syntax=docker/dockerfile:1
#
# kimg's image: the `kimg` CLI, run by default as the admission webhook (`kimg webhook serve`).
#
#   docker build -t registry.example.com/kimg:0.1.0 .
#   kimg webhook manifests --image registry.example.com/kimg@sha256:… --cert-manager | kubectl apply -f -
#
# Three stages: `build` compiles TypeScript with the dev dependencies, `deps` installs the
# production dependencies alone (all pure JavaScript, no install scripts), and the final stage
# holds only Node, those dependencies and the compiled code. It runs as a numeric non-root user
# (so `runAsNonRoot` can be verified without /etc/passwd) and writes nothing at run time: the
# webhook reads its certificate, configuration and client CA from mounted files and keeps its
# caches in memory, so it runs with `readOnlyRootFilesystem: true` as the generated Deployment
# sets it. (`kimg webhook manifests` needs the openssl command unless --cert-manager is given:
# run it where openssl is, not in this image.)

ARG NODE_IMAGE=node:22-bookworm-slim
# A distroless Node of the same major version: no shell, no package manager.
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs22-debian12:nonroot

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would compile before the sources are copied.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${RUNTIME_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
USER 65532:65532
EXPOSE 8443
# The distroless image's entrypoint is node itself.
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/kimg.js"]
CMD ["webhook", "serve"]
