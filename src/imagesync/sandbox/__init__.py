"""The embedded Image Builder: an emulation of the EC2 Image Builder API served over HTTP.

`running()` serves one for the duration of a `with` block; `imagesync sandbox serve` serves one
until it is stopped. Real boto3 clients talk to it through `endpoint_url`.
"""

from __future__ import annotations

from imagesync.sandbox.errors import SandboxError
from imagesync.sandbox.server import RunningSandbox, Sandbox, running

__all__ = ["RunningSandbox", "Sandbox", "SandboxError", "running"]
