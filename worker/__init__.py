"""Celery workers: run training jobs from the queue and record them in `store`."""
