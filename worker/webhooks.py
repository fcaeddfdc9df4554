"""Calling jobs' webhooks (`store.webhooks` holds their state and signature).

A webhook URL comes from a client, so calling it could aim the service at its own network (a
metadata endpoint, the database's port): unless `WEBHOOK_ALLOW_PRIVATE_HOSTS` is set, the host
must resolve only to public addresses, and the call goes to the address that was checked
(no second lookup a DNS rebinding could answer differently), redirects not followed.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from urllib.parse import urlsplit

import httpx

from store import webhooks
from store.db import session_factory, session_scope
from store.settings import Settings

log = logging.getLogger(__name__)


class Refused(ValueError):
    """The URL may not be called (a private address, an unknown host)."""


def public_address(url: str, *, allow_private: bool) -> str:
    """The address to call for `url`'s host, checked; raises `Refused`."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise Refused("the URL has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise Refused(f"host {host!r} does not resolve") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if not address.is_global:
                raise Refused(
                    f"host {host!r} resolves to a non-public address ({address}); set "
                    "WEBHOOK_ALLOW_PRIVATE_HOSTS=true to allow it"
                )
    return str(addresses[0])


def call(taken: webhooks.Call, settings: Settings) -> str | None:
    """One try; None when the receiver answered 2xx, else what went wrong (for the job)."""
    try:
        address = public_address(taken.url, allow_private=settings.webhook_allow_private_hosts)
    except Refused as exc:
        return str(exc)
    parts = urlsplit(taken.url)
    host = parts.hostname or ""
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    target = parts._replace(netloc=netloc).geturl()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "crucible-webhook/1",
        "Host": host if not parts.port else f"{host}:{parts.port}",
        "Crucible-Event": webhooks.EVENT,
        "Crucible-Delivery": f"{taken.job_id}/{taken.attempt}",
        "Crucible-Signature": webhooks.signature(taken.secret, taken.body, int(time.time())),
    }
    # TLS is checked against the URL's host name, not the address the request goes to.
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    request = httpx.Request(
        "POST", target, content=taken.body, headers=headers, extensions=extensions
    )
    try:
        with httpx.Client(timeout=settings.webhook_timeout_seconds) as client:
            response = client.send(request, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: the call did not complete"
    if 200 <= response.status_code < 300:
        return None
    return f"answered HTTP {response.status_code}"


def deliver(job_id: str, settings: Settings) -> str | None:
    """Try the job's webhook if it is due and no other worker is on it; the new status."""
    factory = session_factory(settings.resolved_database_url)
    with session_scope(factory) as session:
        taken = webhooks.take(
            session, job_id, hold_seconds=3 * settings.webhook_timeout_seconds + 5
        )
    if taken is None:
        return None
    error = call(taken, settings)
    with session_scope(factory) as session:
        status = webhooks.record(
            session, taken, error=error, max_attempts=settings.webhook_max_attempts
        )
    if error is None:
        log.info("job %s: webhook delivered (try %d)", job_id, taken.attempt)
    else:
        log.warning("job %s: webhook try %d: %s -> %s", job_id, taken.attempt, error, status)
    return status


def deliver_due(settings: Settings) -> int:
    """Try every due webhook (the sweeper's part); how many were tried."""
    factory = session_factory(settings.resolved_database_url)
    with session_scope(factory) as session:
        ids = list(webhooks.due(session))
    return sum(deliver(job_id, settings) is not None for job_id in ids)
