"""A manifest that was applied plans nothing, for every kind on its own (real sandbox over HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesync import api
from imagesync.aws import CallCounter, ConnectOptions, Connector
from imagesync.planner import PlanOptions
from imagesync.sandbox import running

PROJECT = "project: noop\ntargets:\n  - name: t1\n    region: us-east-1\n    account: '111111111111'\n"
DOC = (
    "schemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: S\n"
    "        action: ExecuteBash\n        inputs:\n          commands: [echo hi]\n"
)
BASE = "arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/x.x.x"
COMPONENT = f"""apiVersion: imagesync/v1
kind: Component
metadata: {{name: comp}}
spec:
  platform: Linux
  version: 1.0.0
  document:
{"".join("    " + line + chr(10) for line in DOC.splitlines())}"""
RECIPE = f"""apiVersion: imagesync/v1
kind: ImageRecipe
metadata: {{name: recipe}}
spec:
  version: 1.0.0
  parentImage: {BASE}
  components: [{{ref: comp}}]
"""
INFRA = """apiVersion: imagesync/v1
kind: InfrastructureConfiguration
metadata: {name: infra}
spec:
  instanceProfileName: build
  instanceTypes: [m7i.large, m6i.large]
  securityGroupIds: [sg-2, sg-1]
"""

CASES = {
    "Component": COMPONENT,
    "Workflow": """apiVersion: imagesync/v1
kind: Workflow
metadata: {name: wf-test}
spec:
  type: TEST
  version: 2.0.0
  document:
    schemaVersion: 1.0
    steps:
      - name: Launch
        action: LaunchInstance
        onFailure: Abort
""",
    "ImageRecipe": COMPONENT + "---\n" + RECIPE,
    "ContainerRecipe": COMPONENT
    + """---
apiVersion: imagesync/v1
kind: ContainerRecipe
metadata: {name: ctr}
spec:
  version: 1.0.0
  containerType: DOCKER
  parentImage: amazonlinux:2023
  components: [{ref: comp}]
  dockerfileTemplateData: "FROM {{{ imagebuilder:parentImage }}}\\n{{{ imagebuilder:components }}}\\n"
  targetRepository: {service: ECR, repositoryName: repo}
""",
    "InfrastructureConfiguration": INFRA,
    "DistributionConfiguration": """apiVersion: imagesync/v1
kind: DistributionConfiguration
metadata: {name: dist}
spec:
  distributions:
    - region: us-east-1
      amiDistributionConfiguration:
        name: "golden-{{ imagebuilder:buildDate }}"
        targetAccountIds: ["333333333333", "222222222222"]
""",
    "ImagePipeline": COMPONENT
    + "---\n"
    + RECIPE
    + "---\n"
    + INFRA
    + """---
apiVersion: imagesync/v1
kind: ImagePipeline
metadata: {name: pipe}
spec:
  imageRecipeArn: {ref: recipe}
  infrastructureConfigurationArn: {ref: infra}
  schedule: {scheduleExpression: "cron(0 4 ? * MON *)"}
""",
    "LifecyclePolicy": """apiVersion: imagesync/v1
kind: LifecyclePolicy
metadata: {name: lcp}
spec:
  executionRole: arn:aws:iam::111111111111:role/lifecycle
  resourceType: AMI_IMAGE
  policyDetails:
    - action: {type: DELETE}
      filter: {type: COUNT, value: 5}
  resourceSelection:
    tagMap: {golden: "true"}
""",
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_applied_manifest_plans_nothing(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "manifests"
    root.mkdir()
    (root / "imagesync.yaml").write_text(PROJECT)
    (root / "m.yaml").write_text(CASES[kind])
    monkeypatch.chdir(tmp_path)
    with running() as sb, Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
        first, outcomes = api.apply(root, connector, PlanOptions())
        assert any(c.kind == kind and c.action == "create" for t in first.targets for c in t.changes)
        assert outcomes and all(o.ok for o in outcomes)
        counter = CallCounter()
        again, _ = api.plan(root, connector, PlanOptions(), counter)
        assert not again.has_changes, [c.to_json() for t in again.targets for c in t.pending]
        assert again.summary() == {"publish": 0, "create": 0, "update": 0, "delete": 0, "drift": 0}
        # the no-op plan only read: every call it made was a Get or a List
        assert counter.total > 0
        assert all(op.startswith(("Get", "List")) for op in counter.counts)
