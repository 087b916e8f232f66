"""Importing imagesync (any of its modules) prints nothing and configures no logging: a program
that uses it as a library keeps its stdout, its root logger and its structlog defaults. Only the
CLI configures logging, and a library caller's events never reach stdout either."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, logging, pkgutil, sys, importlib
import structlog

def state():
    root = logging.getLogger()
    return {
        "root_handlers": [type(h).__name__ for h in root.handlers],
        "root_level": root.level,
        "botocore_handlers": [type(h).__name__ for h in logging.getLogger("botocore").handlers],
        "loggers": sorted(n for n, l in logging.Logger.manager.loggerDict.items()
                          if isinstance(l, logging.Logger) and (l.handlers or l.level)),
        "structlog_configured": structlog.is_configured(),
        "structlog_processors": [repr(p) for p in structlog.get_config()["processors"]],
    }

import boto3, botocore  # noqa: F401  what imagesync imports anyway, so their own setup is in both states
before = state()
import imagesync
names = ["imagesync"]
for info in pkgutil.walk_packages(imagesync.__path__, "imagesync."):
    if info.name != "imagesync.__main__":  # running it is the CLI, not an import
        importlib.import_module(info.name)
        names.append(info.name)
after = state()
sys.stderr.flush()
sys.__stdout__.write("\n" + json.dumps({"before": before, "after": after, "modules": names}) + "\n")
"""


def test_importing_every_module_prints_nothing_and_configures_no_logging() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    printed, _, report = done.stdout.rpartition("\n{")
    assert printed == "", f"import printed to stdout: {printed!r}"
    result = json.loads("{" + report)
    assert {"imagesync.aws", "imagesync.lock", "imagesync.cli", "imagesync.sandbox.server"} <= set(result["modules"])
    assert result["after"] == result["before"]
    assert result["after"]["structlog_configured"] is False


LIBRARY_USE = r"""
import sys
from imagesync.aws import call
from imagesync.logs import get_logger

class Client:
    def get_caller_identity(self):
        return {"Account": "123456789012", "ResponseMetadata": {}}

call(Client(), "GetCallerIdentity", {}, target="prod")   # a debug event: hidden
get_logger("imagesync.test").warning("careful", target="prod")
"""


def test_a_library_caller_sees_warnings_on_stderr_and_nothing_on_stdout() -> None:
    done = subprocess.run([sys.executable, "-c", LIBRARY_USE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "careful" in done.stderr and "target=prod" in done.stderr
    assert "api call" not in done.stderr
