"""Content hashes stay what earlier releases computed, so upgrading imagesync republishes nothing.

The planner hashes a component's or workflow's document as YAML's safe loader reads it
(timestamps as dates, an `on:` key as a boolean). The pinned hashes below were computed by the
planner before the loader kept its own parse of documents; a document file holding a timestamp is
the case that would otherwise move.
"""

from __future__ import annotations

from pathlib import Path

from imagesync.live import HASH_TAG, LiveState
from imagesync.manifest.loader import load
from imagesync.planner import PlanOptions, plan_target

PROJECT = 'project: hashes\ntargets:\n  - name: dev\n    region: us-east-1\n    account: "111111111111"\n'
MANIFESTS = """\
apiVersion: imagesync/v1
kind: Component
metadata: {name: filed}
spec:
  version: 1.0.0
  platform: Linux
  documentFile: docs/filed.yaml
---
apiVersion: imagesync/v1
kind: Component
metadata: {name: inline}
spec:
  version: 1.0.0
  platform: Linux
  document:
    schemaVersion: 1.0
    description: released 2024-01-02T10:00:00Z
    phases:
      - name: build
        steps:
          - name: Hello
            action: ExecuteBash
            timeoutSeconds: 60
            inputs:
              commands: ["echo hi", 2024-01-02T10:00:00Z, 2024-01-02]
"""
FILED = """\
# a comment
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Stamp
        action: ExecuteBash
        inputs:
          commands:
            - echo built
            - 2024-01-02T10:00:00Z
"""
PINNED = {"Component/filed": "a89650deba89336d49aa211e24f7b3ef", "Component/inline": "f08edb61e407afca4b0f0b2959803374"}


def test_document_hashes_are_those_earlier_releases_computed(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "imagesync.yaml").write_text(PROJECT)
    (tmp_path / "components.yaml").write_text(MANIFESTS)
    (tmp_path / "docs" / "filed.yaml").write_text(FILED)
    desired = load(tmp_path)
    target = desired.project.targets[0]
    plan = plan_target(desired, target, "111111111111", LiveState(), PlanOptions())
    hashes = {c.address: c.calls[0].params["tags"][HASH_TAG] for c in plan.changes}
    assert hashes == PINNED
