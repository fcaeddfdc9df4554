"""The Celery app: broker from Settings, three queues, acks-late with prefetch 1.

`gpu` and `cpu` carry training jobs (neural nets, tabular methods); `queries` carries heavy
queries, so they never wait behind training.

Training tasks are long, so a message is acknowledged only after the task returns and a
worker holds one message at a time; the task is idempotent (see `worker.runner`), which is
what makes acks-late safe. The broker carries only job ids; the database holds the rest.

The embedded broker (kombu's SQLAlchemy transport on SQLite) cannot wake a worker when a
message arrives: an idle worker polls it, every `EMBEDDED_POLL_SECONDS` (kombu's default of a
second would be most of a small job's time from submission to its start).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Celery
from celery.signals import setup_logging
from kombu import Queue
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport

from store import logging_setup
from store.settings import Settings, get_settings

TRAIN_TASK = "crucible.train_job"
QUERY_TASK = "crucible.query_job"
QUERY_QUEUE = "queries"
QUEUES = ("gpu", "cpu", QUERY_QUEUE)


def transport_options(broker_url: str, key_prefix: str = "") -> dict[str, object]:
    if broker_url.startswith("sqla+"):
        # kombu hands these to SQLAlchemy's create_engine: wait on SQLite's lock, not fail.
        return {"connect_args": {"timeout": 30}}
    # Redis redelivers unacknowledged messages after this; the job lease in the database
    # makes a redelivery harmless, so it only bounds how late it comes.
    options: dict[str, object] = {"visibility_timeout": 3600}
    if key_prefix:  # several deployments (or test runs) sharing one Redis database
        options["global_keyprefix"] = key_prefix
    return options


@lru_cache(maxsize=8)
def embedded_transport(poll_seconds: float) -> type[SQLAlchemyTransport]:
    """kombu's SQLAlchemy transport, polling every `poll_seconds` while idle.

    Its `polling_interval` transport option cannot say so: this transport hands every option
    to SQLAlchemy's `create_engine`, which refuses it. A subclass sets the class attribute
    the option would have overridden instead."""
    return type("EmbeddedTransport", (SQLAlchemyTransport,), {"polling_interval": poll_seconds})


def create_celery(settings: Settings) -> Celery:
    broker_url, transport = settings.resolved_broker_url, None
    if broker_url.startswith("sqla+"):
        # Our transport class instead of the one the "sqla+" prefix would name.
        broker_url = broker_url.removeprefix("sqla+")
        transport = embedded_transport(settings.embedded_poll_seconds)
    app = Celery("crucible", broker=broker_url, include=["worker.tasks"])
    app.conf.update(
        broker_transport=transport,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="cpu",
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options(
            settings.resolved_broker_url, settings.broker_key_prefix
        ),
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # The sweeper re-enqueues orphaned jobs; a lost worker's task is simply acked.
        task_reject_on_worker_lost=False,
    )
    return app


@setup_logging.connect
def _configure_logging(loglevel: int | str | None = None, **_: Any) -> None:
    """Replace Celery's logging set-up (and its format) with the service's one, at the level
    of `--loglevel`, which `scripts/run.sh` and the Makefile take from LOG_LEVEL."""
    logging_setup.configure(loglevel or get_settings().log_level)


def celery_for(settings: Settings) -> Celery:
    """The producer app for `settings`' broker, so a caller with its own Settings (a test, a
    second deployment in one process) sends to its own broker."""
    return _celery_for(settings.resolved_broker_url, settings.broker_key_prefix)


@lru_cache(maxsize=4)
def _celery_for(broker_url: str, key_prefix: str) -> Celery:
    own = get_settings()
    if (broker_url, key_prefix) == (own.resolved_broker_url, own.broker_key_prefix):
        return app
    return create_celery(
        own.model_copy(update={"broker_url": broker_url, "broker_key_prefix": key_prefix})
    )


app = create_celery(get_settings())
