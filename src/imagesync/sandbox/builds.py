"""Images and their builds over the sandbox clock.

`BuildOperations` holds the image operations; `Backend` inherits them.
"""

from __future__ import annotations

from imagesync.sandbox.core import Core


class BuildOperations(Core):
    """Image builds, pipeline runs and schedules."""
