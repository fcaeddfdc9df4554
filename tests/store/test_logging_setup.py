"""One log format for the API and the workers (`store.logging_setup`), checked in a fresh
interpreter: the test runner's own log capture would make `configure` stand aside here."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from store.logging_setup import level_of


def run(code: str) -> str:
    """What `code` writes to stderr, run by this interpreter in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stderr


def test_levels_by_name_in_any_case_or_number() -> None:
    assert level_of("info") == level_of("INFO") == 20
    assert level_of(" warning ") == 30
    assert level_of(10) == 10
    with pytest.raises(ValueError, match="DEBUG, INFO"):
        level_of("verbose")


def test_one_format_for_our_lines_and_uvicorns_and_the_access_log_on_request() -> None:
    err = run(
        """
        import logging
        from store.logging_setup import configure
        configure("info", access_log=True)
        logging.getLogger("api.main").info("hello")
        logging.getLogger("api.main").debug("not at info")
        logging.getLogger("uvicorn.error").info("Started server process")
        logging.getLogger("uvicorn.access").info('%s - "%s"', "127.0.0.1:1", "GET /")
        """
    )
    lines = err.splitlines()
    assert len(lines) == 3, err
    assert lines[0].endswith("INFO     api.main: hello")
    assert lines[1].endswith("INFO     uvicorn: Started server process")
    assert lines[2].endswith('INFO     uvicorn.access: 127.0.0.1:1 - "GET /"')


def test_without_the_access_log_uvicorn_sees_no_handler() -> None:
    """uvicorn decides per connection by `hasHandlers()`, whatever its own flags said."""
    err = run(
        """
        import logging, sys
        logging.getLogger("uvicorn.access").addHandler(logging.StreamHandler(sys.stderr))
        from store.logging_setup import configure
        configure("INFO", access_log=False)
        assert not logging.getLogger("uvicorn.access").hasHandlers()
        logging.getLogger("uvicorn.access").info("GET /")
        """
    )
    assert err == ""


def test_configured_logging_is_left_alone() -> None:
    err = run(
        """
        import logging
        logging.basicConfig(format="%(message)s", level="WARNING")
        from store.logging_setup import configure
        configure("DEBUG")
        logging.getLogger("x").info("hidden")
        logging.getLogger("x").warning("plain")
        """
    )
    assert err == "plain\n"
