"""Lifecycle policies at work: executions that deprecate, disable and delete images by their rules.

`LifecycleOperations` holds the lifecycle-execution operations; `Backend` inherits them.
"""

from __future__ import annotations

from imagesync.sandbox.core import Core


class LifecycleOperations(Core):
    """Lifecycle executions over the sandbox clock."""
