FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# tsx runs the TypeScript sources; the type checker and linter stay out of the image.
RUN npm ci --omit=dev --no-audit --no-fund
COPY src ./src
COPY db ./db
COPY scripts ./scripts
COPY tsconfig.json ./
USER node
EXPOSE 8000
CMD ["node", "--import", "tsx", "src/server.ts"]
