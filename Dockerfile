# Build: the TypeScript compiler and the other dev dependencies stay in this stage.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Run: compiled JavaScript, production dependencies only, no TypeScript loader.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY db ./db
COPY public ./public
COPY --from=build /app/dist ./dist
USER node
# Reachable from outside the container; compose.yaml says the same.
ENV HOST=0.0.0.0 PORT=8000
EXPOSE 8000
# node, since the slim image has no curl. The first start applies the migrations: give it time.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Also in the image, for a lost admin password or the migrations by hand:
#   docker compose exec -e ADMIN_PASSWORD='…' api node dist/cli/create-admin.js
#   docker compose exec api node dist/cli/db.js status
CMD ["node", "dist/server.js"]
