# syntax=docker/dockerfile:1
# The one kasho image: every service, the scripts and the operator.
# BASE_IMAGE must provide Node.js 20+ and Debian's apt (the default is the official slim image; hack/ builds a
# local Debian base with Node from the npm registry where no registry is reachable).
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY services/common/package.json services/common/
COPY services/pg-change-stream/package.json services/pg-change-stream/
COPY services/pg-translicator/package.json services/pg-translicator/
COPY services/pg-bootstrap-sync/package.json services/pg-bootstrap-sync/
COPY operator/package.json operator/
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.base.json ./
COPY proto proto
COPY hack/generate-proto.sh hack/
COPY services services
COPY operator operator
RUN npm run build && npm prune --omit=dev --no-audit --no-fund --loglevel=error

FROM ${BASE_IMAGE}
RUN apt-get update -qq \
  && apt-get install -y -qq --no-install-recommends postgresql-client ca-certificates >/dev/null \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --system --gid 10001 kasho \
  && useradd --system --uid 10001 --gid kasho --home-dir /app --shell /usr/sbin/nologin kasho
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/services/common/package.json services/common/
COPY --from=build /src/services/common/dist services/common/dist
COPY --from=build /src/services/pg-change-stream/package.json services/pg-change-stream/
COPY --from=build /src/services/pg-change-stream/dist services/pg-change-stream/dist
COPY --from=build /src/services/pg-translicator/package.json services/pg-translicator/
COPY --from=build /src/services/pg-translicator/dist services/pg-translicator/dist
COPY --from=build /src/services/pg-bootstrap-sync/package.json services/pg-bootstrap-sync/
COPY --from=build /src/services/pg-bootstrap-sync/dist services/pg-bootstrap-sync/dist
COPY --from=build /src/operator/package.json operator/
COPY --from=build /src/operator/dist operator/dist
COPY proto proto
COPY bin bin
COPY scripts scripts
RUN for program in pg-change-stream pg-translicator pg-bootstrap-sync kasho-operator kasho; do \
      [ -e "bin/$program" ] && ln -s "bin/$program" "$program"; \
    done; \
    mkdir -p config && chown kasho:kasho config
ENV NODE_ENV=production
USER 10001:10001
CMD ["./kasho"]
