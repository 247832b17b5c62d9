# flux-review's GitHub App: `docker build -t flux-review .`, then run it with the environment
# of docs/deployment.md (APP_ID, PRIVATE_KEY, WEBHOOK_SECRET, and REDIS_URL for replicas).
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.12-slim
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it without a passwd lookup.
RUN useradd --system --uid 10001 --gid 0 --no-create-home --home-dir /nonexistent flux-review
COPY --from=build /install /usr/local
USER 10001
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=3000
EXPOSE 3000
# SIGTERM starts the graceful shutdown (SHUTDOWN_GRACE); exec form, so Python gets it.
CMD ["python", "-m", "bot", "serve"]
