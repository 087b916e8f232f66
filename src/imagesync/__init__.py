"""imagesync: keep AWS EC2 Image Builder in the state a git repository describes."""

from __future__ import annotations

__version__ = "0.1.0"
