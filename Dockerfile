# The one kasho image: every service, the two scripts and the operator, run as uid 10001 from /app.
#   docker build -t kasho .
#   docker run --rm kasho                 # help: what is in the image and how to run each part
# BASE_IMAGE must provide Node.js 20+ (node and npm in PATH) and Debian's apt. The default is the registry's official
# slim image; hack/docker/build-image.sh builds on local/node:20-bookworm-slim, made from Debian and npm packages
# where no image registry is reachable.
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
# Marks this stage's images, so that hack/docker/build-image.sh can drop the ones older builds left behind.
LABEL io.kasho.stage=build
WORKDIR /src
# CA certificates npm must trust while installing, e.g. a TLS-inspecting proxy's; used in this stage only.
COPY hack/docker/build-certs/ /usr/local/share/kasho-build-certs/
COPY package.json package-lock.json ./
COPY services/common/package.json services/common/
COPY services/pg-change-stream/package.json services/pg-change-stream/
COPY services/pg-translicator/package.json services/pg-translicator/
COPY services/pg-bootstrap-sync/package.json services/pg-bootstrap-sync/
COPY operator/package.json operator/
RUN certs="$(find /usr/local/share/kasho-build-certs -type f \( -name '*.pem' -o -name '*.crt' \))"; \
    if [ -n "$certs" ]; then \
      cat $certs >/tmp/build-ca.pem && export NODE_EXTRA_CA_CERTS=/tmp/build-ca.pem; \
    fi; \
    npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.base.json ./
COPY proto proto
COPY hack/generate-proto.sh hack/
COPY services services
COPY operator operator
RUN npm run build \
  && npm prune --omit=dev --no-audit --no-fund --loglevel=error \
  && find services operator -name '*.tsbuildinfo' -delete

FROM ${BASE_IMAGE}
# postgresql-client: psql and pg_dump for scripts/prepare-primary-db.sh and scripts/bootstrap-kasho.sh.
RUN apt-get update -qq \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    postgresql-client ca-certificates >/dev/null \
  && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
  && groupadd --system --gid 10001 kasho \
  && useradd --system --uid 10001 --gid kasho --home-dir /app --no-create-home --shell /usr/sbin/nologin kasho
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
# The guide runs the programs as ./NAME from /app. kasho-operator may be missing from a tree that has no operator
# entry point yet; the image then simply lacks it.
RUN for program in kasho pg-change-stream pg-translicator pg-bootstrap-sync kasho-ctl kasho-operator; do \
      if [ -e "bin/$program" ]; then ln -s "bin/$program" "$program"; fi; \
    done \
  && mkdir config
ENV NODE_ENV=production
USER 10001:10001
CMD ["./kasho"]
