#!/bin/sh
# Rewrite the renderer golden files under tests/render/golden/ from the current renderers.
set -eu
cd "$(dirname "$0")/.."
IMAGESYNC_UPDATE_GOLDEN=1 exec python -m pytest tests/render -q "$@"
