# The application image: one image, one entry point (`wastepilot`), the command picks the service.
FROM node:22.11-bookworm-slim AS web
WORKDIR /web
COPY api/web/package.json api/web/package-lock.json ./
# the pages' assets only (axe-core is for the browser tests), and their stylesheet compiled as
# scripts/bootstrap compiles it
RUN npm ci --omit=dev --no-audit --no-fund
COPY api/web/styles styles
RUN node_modules/.bin/sass --no-source-map --style=compressed --quiet-deps \
      --load-path=node_modules styles/wastepilot.scss wastepilot.css

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY ingest ingest
COPY simulator simulator
COPY analytics analytics
COPY bids bids
COPY api api
COPY wastepilot wastepilot
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 wastepilot \
 && mkdir -p /var/lib/wastepilot/archive && chown wastepilot /var/lib/wastepilot/archive
COPY --from=build /opt/venv /opt/venv
COPY --from=web /web/node_modules /opt/venv/lib/python3.11/site-packages/api/web/node_modules
COPY --from=web /web/wastepilot.css /opt/venv/lib/python3.11/site-packages/api/web/static/
COPY migrations /app/migrations
COPY deploy /app/deploy
ENV PATH=/opt/venv/bin:$PATH \
    WASTEPILOT_STATE_DIR=/tmp/wastepilot \
    WASTEPILOT_MIGRATIONS_DIR=/app/migrations
USER wastepilot
WORKDIR /app
ENTRYPOINT ["wastepilot"]
CMD ["--help"]
