# FinCRM web and worker image. Build: docker build -t fincrm .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CRM_ENV=production \
    CRM_INSTANCE_DIR=/srv/fincrm/instance

WORKDIR /srv/fincrm
RUN groupadd --gid 10001 fincrm && useradd --create-home --uid 10001 --gid 10001 fincrm

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY app ./app
COPY migrations ./migrations
COPY config.py run.py worker.py ./
RUN mkdir -p "$CRM_INSTANCE_DIR" && chown -R fincrm:fincrm /srv/fincrm

# Numeric, so an orchestrator can tell the image does not run as root.
USER 10001:10001
EXPOSE 8080
# Healthy when ready: the database, Redis and the document storage answer (GET /health/ready;
# GET /health is the liveness probe for an orchestrator that restarts what stops answering).
HEALTHCHECK --interval=30s --timeout=8s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health/ready', timeout=7)"]

# Migrations and permission sync run once per release (`flask --app run crm init`), not here.
CMD ["gunicorn", "--bind", "0.0.0.0:8080", "--workers", "2", "--threads", "4", "--access-logfile", "-", "run:app"]
