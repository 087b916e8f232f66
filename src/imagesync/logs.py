"""Logging setup: structlog events on stderr, readable on a console or one JSON object a line.

The CLI calls `configure()` once; modules log through `get_logger()`. Events carry resource
addresses, operations and AWS error codes, never request bodies (which may hold secrets).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(log_format: str = "console", verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING
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


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
