# The worker image docker-compose.temporal.yml builds: this repository installed, worker.py as the entry.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tenantmove ./tenantmove
COPY stagesub ./stagesub
COPY activities ./activities
COPY workflows ./workflows
COPY console ./console
COPY bench ./bench
COPY prisma ./prisma
COPY worker.py starter.py ./
RUN pip install --no-cache-dir -e . && useradd --create-home stagesub && mkdir -p /var/lib/stagesub \
    && chown stagesub /var/lib/stagesub
USER stagesub
ENV STATE_DIR=/var/lib/stagesub LOG_FORMAT=json
CMD ["python", "worker.py"]
