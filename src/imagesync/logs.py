"""Logging setup: structlog events on stderr, readable on a console or one JSON object a line.

The CLI calls `configure()` once; modules log through `get_logger()`. Events carry resource
addresses, operations and AWS error codes, never request bodies (which may hold secrets).
Importing imagesync configures nothing: only `configure()` touches structlog or `logging`, and
there only botocore's logger, whose warnings (a failed credential refresh, say) would otherwise
reach stderr through `logging`'s last-resort handler, traceback included, in neither format.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(log_format: str = "console", verbose: bool = False, info: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO if info else logging.WARNING
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # sys.stderr is looked up per event, not bound once: whoever replaced it since (a test
        # harness capturing output, say) gets the line, and a closed stream is never written to.
        logger_factory=lambda *_args: structlog.PrintLogger(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    botocore_logger = logging.getLogger("botocore")
    for handler in [h for h in botocore_logger.handlers if isinstance(h, _ToStructlog)]:
        botocore_logger.removeHandler(handler)
    # botocore's debug records carry request bodies: only its warnings and errors come through.
    botocore_logger.addHandler(_ToStructlog(level=logging.WARNING))


class _ToStructlog(logging.Handler):
    """Re-emits a stdlib record as a structlog event: its message and, for an exception, the
    exception's text (the traceback is botocore's, not a problem in imagesync)."""

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = {}
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = str(record.exc_info[1])
        get_logger(record.name).log(record.levelno, record.getMessage(), **fields)


def get_logger(name: str) -> Any:
    """A logger for `name` that follows structlog's configuration once someone (the CLI, or an
    application using imagesync as a library) has made one, and until then writes warnings and
    errors to stderr: structlog's own default would print every event, debug included, to stdout,
    which holds plans and JSON."""
    return _Logger(name)


class _Logger:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, method: str) -> Any:
        if structlog.is_configured():
            return getattr(structlog.get_logger(self._name), method)
        return getattr(_unconfigured(), method)


def _unconfigured() -> Any:
    return structlog.wrap_logger(
        structlog.PrintLogger(file=sys.stderr),
        processors=[structlog.processors.add_log_level, structlog.dev.ConsoleRenderer(colors=False)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=False,
    )
