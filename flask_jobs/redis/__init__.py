"""Redis for flask-jobs: clients from ``JOBS_REDIS_URL`` (Sentinel too), the embedded
redis-server of development runs, and the one-app-per-database claim."""
