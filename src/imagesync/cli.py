"""The command line: the only place that parses argv, prints, and exits.

Every subcommand calls into the core and renders what it returns. Errors raised on purpose carry
their exit code; anything else is a bug, shown without a traceback unless `-v`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from imagesync import __version__
from imagesync.errors import ImagesyncError


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagesync",
        description="Keep AWS EC2 Image Builder in the state a git repository describes.",
    )
    parser.add_argument("--version", action="version", version=f"imagesync {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    validate = commands.add_parser(
        "validate",
        help="check manifests offline: YAML, schemas, references, cycles, documents",
        description=(
            "Check the manifests in DIR without contacting AWS. Prints every problem as "
            "'path:line:col: error: message' and exits 1 when there is any, 0 otherwise."
        ),
    )
    validate.add_argument("dir", nargs="?", default=".", metavar="DIR", help="manifest directory (default: .)")
    validate.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    validate.set_defaults(handler=_cmd_validate)

    sandbox = commands.add_parser("sandbox", help="the embedded Image Builder emulation")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    sandbox_commands.required = True
    serve = sandbox_commands.add_parser(
        "serve",
        help="serve the Image Builder API on loopback until SIGTERM/SIGINT",
        description=(
            "Serve an emulated EC2 Image Builder API. The first line of stdout is "
            "'endpoint=http://HOST:PORT'; point boto3 at it with endpoint_url. "
            "GET /_sandbox/stats returns call counts, POST /_sandbox/reset clears state and counts."
        ),
    )
    serve.add_argument("--state", metavar="FILE", help="JSON state file (absent: empty state); default: in memory")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=0, help="port to bind; 0 picks a free one (default: 0)")
    serve.add_argument("--latency-ms", type=_non_negative, default=0.0, metavar="N", help="delay every call by N ms")
    serve.add_argument("--throttle-rate", type=_rate, default=0.0, metavar="P",
                       help="fraction of calls answered with 429 CallRateLimitExceededException")
    serve.add_argument("--error-rate", type=_rate, default=0.0, metavar="P",
                       help="fraction of calls answered with 500 ServiceException / 503 ServiceUnavailableException")
    serve.add_argument("--reset-rate", type=_rate, default=0.0, metavar="P",
                       help="fraction of calls whose connection is reset (before handling, or after the write)")
    serve.add_argument("--seed", type=int, default=None, metavar="N", help="seed that makes injected faults repeatable")
    serve.add_argument("--versioning", choices=("auto", "legacy"), default="auto",
                       help="component/workflow build numbering: auto (same version, new content -> next build) "
                            "or legacy (same version -> ResourceAlreadyExistsException)")
    serve.set_defaults(handler=_cmd_sandbox_serve)
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    from imagesync import api

    result = api.validate(args.dir)
    if args.format == "json":
        summary = {
            "valid": result.ok,
            "problems": [p.as_dict() for p in result.problems],
            "resources": len(result.desired.resources) if result.desired else 0,
        }
        print(json.dumps(summary, indent=2))
    elif result.ok:
        assert result.desired is not None
        targets = len(result.desired.project.targets)
        print(f"{args.dir}: valid ({len(result.desired.resources)} resources across {targets} targets)")
    else:
        for problem in result.problems:
            print(problem)
        print(f"{len(result.problems)} problem(s) found", file=sys.stderr)
    return 0 if result.ok else 1


def _cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from imagesync.sandbox.faults import FaultConfig
    from imagesync.sandbox.server import RunningSandbox, Sandbox

    try:
        faults = FaultConfig(args.latency_ms, args.throttle_rate, args.error_rate, args.reset_rate, args.seed)
    except ValueError as exc:
        raise _Usage(str(exc)) from exc
    try:
        served = RunningSandbox(Sandbox(args.state, versioning=args.versioning, faults=faults), args.host, args.port)
    except OSError as exc:
        raise _Usage(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    print(f"endpoint={served.endpoint_url}", flush=True)

    def stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=served.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    served.serve_forever()
    return 0


class _Usage(ImagesyncError):
    exit_code = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except ImagesyncError as err:
        if args.verbose:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so plainly, keep the traceback behind -v
        if args.verbose:
            raise
        print(f"error: internal error: {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
