# Image of the cloud processes (api, worker, setup) for docker-compose.yml. The VM image is vm/Dockerfile.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY core/package.json core/package.json
COPY web/package.json web/package.json
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build -w @factory-factory/web
# tsx runs the TypeScript sources (a devDependency, so NODE_ENV is set only after npm ci).
ENV NODE_ENV=production
USER node
CMD ["node", "--conditions=source", "--import", "tsx", "api/main.ts"]
