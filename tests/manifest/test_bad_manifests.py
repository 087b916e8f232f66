"""Bad manifests, table-driven: every kind of mistake gets a clear problem at its exact place.

Each case writes a tiny manifest tree (an `imagesync.yaml` with targets `prod` and `dev`, plus the
case's files) into a temporary directory, runs `imagesync.api.validate` on it, and checks the exact
(file, line, column) and a message fragment of the problem it expects (bad input).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagesync.api import ValidationResult, validate
from imagesync.errors import ImagesyncError
from imagesync.manifest.loader import load
from imagesync.manifest.problems import ManifestError
from imagesync.manifest.yamlloc import MAX_NODES

# --- the tree every case starts from -------------------------------------------------------------

PROJECT = """\
project: bad-manifests
targets:
  - name: prod
    region: us-east-1
    account: "111111111111"
    vars:
      subnet: subnet-1
  - name: dev
    region: eu-west-1
    account: "222222222222"
"""

OUTSIDE = "@OUTSIDE@"  # replaced by the absolute path of a directory outside the manifest root

COMPONENT_DOC = """\
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Hello
        action: ExecuteBash
        inputs:
          commands:
            - echo hello
"""

COMPONENT_FILE = """\
apiVersion: imagesync/v1
kind: Component
metadata:
  name: comp
spec:
  platform: Linux
  version: 1.0.0
  documentFile: components/comp.yml
"""

COMPONENT_INLINE = """\
apiVersion: imagesync/v1
kind: Component
metadata:
  name: comp
spec:
  platform: Linux
  version: 1.0.0
  document:
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Hello
            action: ExecuteBash
            inputs:
              commands:
                - echo hello
"""

RECIPE = """\
apiVersion: imagesync/v1
kind: ImageRecipe
metadata:
  name: base
spec:
  version: 1.0.0
  parentImage: arn:aws:imagebuilder:${target.region}:aws:image/amazon-linux-2023-x86/x.x.x
  components:
    - ref: comp
"""

INFRA = """\
apiVersion: imagesync/v1
kind: InfrastructureConfiguration
metadata:
  name: infra
spec:
  instanceProfileName: build-profile
  instanceTypes: [m7i.large]
"""

DIST = """\
apiVersion: imagesync/v1
kind: DistributionConfiguration
metadata:
  name: dist
spec:
  distributions:
    - region: ${target.region}
      amiDistributionConfiguration:
        name: "golden-{{ imagebuilder:buildDate }}"
"""

PIPELINE = """\
apiVersion: imagesync/v1
kind: ImagePipeline
metadata:
  name: pipe
spec:
  imageRecipeArn: {ref: base}
  infrastructureConfigurationArn: {ref: infra}
  distributionConfigurationArn: {ref: dist}
"""

LIFECYCLE = """\
apiVersion: imagesync/v1
kind: LifecyclePolicy
metadata:
  name: retention
spec:
  executionRole: arn:aws:iam::${target.account}:role/lifecycle
  resourceType: AMI_IMAGE
  policyDetails:
    - action: {type: DELETE}
      filter: {type: AGE, value: 90, unit: DAYS}
  resourceSelection:
    recipes:
      - {name: base, semanticVersion: x.x.x}
"""

CONTAINER = """\
apiVersion: imagesync/v1
kind: ContainerRecipe
metadata:
  name: api
spec:
  version: 1.0.0
  containerType: DOCKER
  parentImage: public.ecr.aws/amazonlinux/amazonlinux:2023
  components:
    - ref: comp
  dockerfileTemplateFile: api.Dockerfile
  targetRepository:
    service: ECR
    repositoryName: golden/api
"""

DOCKERFILE = """\
FROM {{{ imagebuilder:parentImage }}}
{{{ imagebuilder:components }}}
"""

WORKFLOW = """\
apiVersion: imagesync/v1
kind: Workflow
metadata:
  name: flow
spec:
  type: BUILD
  version: 1.0.0
  documentFile: workflows/flow.yml
"""

WORKFLOW_DOC = """\
schemaVersion: 1.0
steps:
  - name: Launch
    action: LaunchInstance
    inputs:
      waitFor: ssmAgent
  - name: Terminate
    action: TerminateInstance
    onFailure: Continue
    inputs:
      instanceId.$: $.stepOutputs.Launch.instanceId
"""

# A tree with one resource of every kind; every case below breaks one thing in a tree like it.
VALID_ESTATE: dict[str, str | bytes] = {
    "components.yaml": COMPONENT_FILE,
    "components/comp.yml": COMPONENT_DOC,
    "recipes.yaml": RECIPE,
    "infra.yaml": INFRA,
    "dist.yaml": DIST,
    "pipelines.yaml": PIPELINE,
    "lifecycle.yaml": LIFECYCLE,
    "container.yaml": CONTAINER,
    "api.Dockerfile": DOCKERFILE,
    "workflow.yaml": WORKFLOW,
    "workflows/flow.yml": WORKFLOW_DOC,
}


def edit(text: str, old: str, new: str) -> str:
    """`text` with the one occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def alias_bomb(levels: int = 9) -> str:
    """Billion laughs: each level is a list of nine aliases to the level before."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnopqrstuvwxyz"
    for i in range(1, levels):
        prev, name = names[i - 1], names[i]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def component_with_doc(doc: str, name: str = "comp") -> dict[str, str | bytes]:
    return {"components.yaml": edit(COMPONENT_FILE, "name: comp", f"name: {name}"), "components/comp.yml": doc}


# --- cases ---------------------------------------------------------------------------------------

Setup = Callable[[Path, Path, pytest.MonkeyPatch], None]


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, str | bytes]
    file: str
    line: int
    column: int
    message: str
    project: str | None = PROJECT  # None: no imagesync.yaml at all
    setup: Setup | None = None  # (root, outside, monkeypatch) -> None, run after the files are written
    count: int | None = 1  # how many problems the tree has in all (None: don't check)
    also: tuple[str, ...] = field(default_factory=tuple)  # fragments that other problems must contain


def _link_document_outside(root: Path, outside: Path, _mp: pytest.MonkeyPatch) -> None:
    (outside / "secret.yml").write_text(COMPONENT_DOC)
    (root / "components").mkdir(exist_ok=True)
    os.symlink(outside / "secret.yml", root / "components" / "comp.yml")


def _link_manifest_outside(root: Path, outside: Path, _mp: pytest.MonkeyPatch) -> None:
    (outside / "elsewhere.yaml").write_text(INFRA)
    os.symlink(outside / "elsewhere.yaml", root / "linked.yaml")


def _unset_env(_root: Path, _outside: Path, mp: pytest.MonkeyPatch) -> None:
    mp.delenv("IMAGESYNC_TEST_UNSET", raising=False)


CASES: list[Case] = [
    # --- malformed YAML ---------------------------------------------------------------------
    Case(
        "yaml-unclosed-bracket",
        {"infra.yaml": edit(INFRA, "metadata:\n  name: infra\n", "metadata: {name: infra\n")},
        "infra.yaml", 4, 5, "expected ',' or '}'",  # PyYAML and libyaml word the rest differently
    ),
    Case(
        "yaml-bad-indentation",
        {"infra.yaml": edit(INFRA, "  instanceTypes:", " instanceTypes:")},
        "infra.yaml", 7, 2, "invalid YAML",
    ),
    Case(
        "yaml-tab-indentation",
        {"infra.yaml": edit(INFRA, "  instanceTypes:", "\tinstanceTypes:")},
        "infra.yaml", 7, 1, "invalid YAML: ",
    ),
    Case(
        "yaml-unclosed-quote",
        {"infra.yaml": edit(INFRA, "build-profile", '"build-profile')},
        "infra.yaml", 8, 1, "invalid YAML",
    ),
    # --- duplicate keys ---------------------------------------------------------------------
    Case(
        "duplicate-key-in-manifest",
        {"infra.yaml": INFRA + "  instanceProfileName: other-profile\n"},
        "infra.yaml", 8, 3, "duplicate key 'instanceProfileName' (first defined at line 6, column 3)",
    ),
    Case(
        "duplicate-key-in-imagesync-yaml",
        {"infra.yaml": INFRA},
        "imagesync.yaml", 11, 1, "duplicate key 'project' (first defined at line 1, column 1)",
        project=PROJECT + "project: again\n",
    ),
    Case(
        "duplicate-key-in-component-document-file",
        component_with_doc(edit(COMPONENT_DOC, "        action: ExecuteBash\n",
                                "        action: ExecuteBash\n        action: ExecuteBash\n")),
        "components/comp.yml", 7, 9, "duplicate key 'action' (first defined at line 6, column 9)",
    ),
    Case(
        "duplicate-key-in-workflow-document-file",
        {"workflow.yaml": WORKFLOW, "workflows/flow.yml": WORKFLOW_DOC + "schemaVersion: 1.0\n"},
        "workflows/flow.yml", 12, 1, "duplicate key 'schemaVersion' (first defined at line 1, column 1)",
    ),
    # --- envelope ---------------------------------------------------------------------------
    Case(
        "wrong-api-version",
        {"infra.yaml": edit(INFRA, "imagesync/v1", "imagesync/v2")},
        "infra.yaml", 1, 1, "apiVersion must be 'imagesync/v1', got 'imagesync/v2'",
    ),
    Case(
        "missing-api-version",
        {"infra.yaml": edit(INFRA, "apiVersion: imagesync/v1\n", "")},
        "infra.yaml", 1, 1, "not an imagesync manifest",
    ),
    Case(
        "unknown-kind",
        {"infra.yaml": edit(INFRA, "kind: InfrastructureConfiguration", "kind: InfraConfig")},
        "infra.yaml", 2, 1, "unknown kind 'InfraConfig'; expected one of: Component",
    ),
    Case(
        "manifest-not-a-mapping",
        {"infra.yaml": "- apiVersion: imagesync/v1\n- kind: Component\n"},
        "infra.yaml", 1, 1, "a manifest must be a mapping",
    ),
    Case(
        "missing-metadata-name",
        {"infra.yaml": edit(INFRA, "  name: infra\n", "  labels: {}\n")},
        "infra.yaml", 3, 1, "metadata.name is required",
    ),
    Case(
        "bad-metadata-name",
        {"infra.yaml": edit(INFRA, "name: infra", "name: bad/name!")},
        "infra.yaml", 4, 3, "metadata.name: 'bad/name!' is not a valid name: use 3 to 128 letters",
    ),
    Case(
        "unknown-metadata-field",
        {"infra.yaml": edit(INFRA, "  name: infra\n", "  name: infra\n  labels: {team: a}\n")},
        "infra.yaml", 5, 3, "metadata.labels: unknown field 'labels'",
    ),
    Case(
        "unknown-target-in-metadata-targets",
        {"infra.yaml": edit(INFRA, "  name: infra\n", "  name: infra\n  targets: [prod, staging]\n")},
        "infra.yaml", 5, 19, "unknown target 'staging'; imagesync.yaml defines: dev, prod",
    ),
    # --- schema violations, per kind --------------------------------------------------------
    Case(
        "component-unknown-spec-field",
        {**VALID_ESTATE, "components.yaml": COMPONENT_FILE + "  owner: platform-team\n"},
        "components.yaml", 9, 3, "spec.owner: unknown field 'owner'",
    ),
    Case(
        "component-wrong-platform-enum",
        {**VALID_ESTATE, "components.yaml": edit(COMPONENT_FILE, "platform: Linux", "platform: Solaris")},
        "components.yaml", 6, 3, "spec.platform: 'Solaris' is not one of",
    ),
    Case(
        "component-missing-version",
        {**VALID_ESTATE, "components.yaml": edit(COMPONENT_FILE, "  version: 1.0.0\n", "")},
        "components.yaml", 5, 1, "'version' is a required property",
    ),
    Case(
        "component-invalid-semver",
        {**VALID_ESTATE, "components.yaml": edit(COMPONENT_FILE, "version: 1.0.0", "version: '1.0'")},
        "components.yaml", 7, 3, "spec.version: '1.0' is not a version: write major.minor.patch, e.g. '1.0.0'",
    ),
    Case(
        "component-semver-as-number",
        {**VALID_ESTATE, "components.yaml": edit(COMPONENT_FILE, "version: 1.0.0", "version: 1.0")},
        "components.yaml", 7, 3,
        "spec.version: YAML read the unquoted value as the number 1.0, but it must be a string: quote it",
    ),
    Case(
        "component-both-document-and-document-file",
        {**VALID_ESTATE, "components.yaml": COMPONENT_FILE + "  document: {schemaVersion: 1.0}\n"},
        "components.yaml", 5, 1, "specify exactly one of document, documentFile, uri",
    ),
    Case(
        "component-neither-document-nor-file",
        {"components.yaml": edit(COMPONENT_FILE, "  documentFile: components/comp.yml\n", "")},
        "components.yaml", 5, 1, "specify exactly one of document, documentFile, uri",
    ),
    Case(
        "component-ref-where-not-allowed",
        {**VALID_ESTATE, "components.yaml": edit(COMPONENT_FILE, "platform: Linux", "platform: {ref: linux}")},
        "components.yaml", 6, 3, "spec.platform: {'ref': 'linux'} is not a string",
        count=2,
        also=("spec.platform: {'ref': 'linux'} is not one of",),
    ),
    Case(
        "recipe-invalid-semver",
        {**VALID_ESTATE, "recipes.yaml": edit(RECIPE, "version: 1.0.0", "version: 1.0.0-beta")},
        "recipes.yaml", 6, 3, "spec.version: '1.0.0-beta' is not a recipe version",
    ),
    Case(
        "recipe-components-wrong-type",
        {**VALID_ESTATE, "recipes.yaml": edit(RECIPE, "  components:\n    - ref: comp\n", "  components: comp\n")},
        "recipes.yaml", 8, 3, "spec.components: 'comp' is not a list",
    ),
    Case(
        "recipe-component-item-with-ref-and-arn",
        {**VALID_ESTATE, "recipes.yaml": edit(
            RECIPE, "    - ref: comp\n",
            "    - ref: comp\n      componentArn: arn:aws:imagebuilder:us-east-1:aws:component/update-linux/x.x.x\n")},
        "recipes.yaml", 10, 7, "spec.components[0].componentArn: unknown field 'componentArn'",
    ),
    Case(
        "recipe-missing-parent-image",
        {**VALID_ESTATE, "recipes.yaml": edit(RECIPE, "  parentImage: arn:aws:imagebuilder:${target.region}"
                                              ":aws:image/amazon-linux-2023-x86/x.x.x\n", "")},
        "recipes.yaml", 5, 1, "'parentImage' is a required property",
    ),
    Case(
        "infra-missing-instance-profile-name",
        {"infra.yaml": edit(INFRA, "  instanceProfileName: build-profile\n", "")},
        "infra.yaml", 5, 1, "'instanceProfileName' is a required property",
    ),
    Case(
        "infra-wrong-type",
        {"infra.yaml": INFRA + "  terminateInstanceOnFailure: 'yes'\n"},
        "infra.yaml", 8, 3, "spec.terminateInstanceOnFailure: 'yes' is not a boolean (true or false)",
    ),
    Case(
        "infra-ref-where-not-allowed",
        {"infra.yaml": edit(INFRA, "instanceProfileName: build-profile", "instanceProfileName: {ref: profile}")},
        "infra.yaml", 6, 3, "spec.instanceProfileName",
    ),
    Case(
        "distribution-missing-distributions",
        {"dist.yaml": DIST.split("  distributions:")[0] + "  description: nothing to distribute\n"},
        "dist.yaml", 5, 1, "'distributions' is a required property",
    ),
    Case(
        "pipeline-wrong-status-enum",
        {**VALID_ESTATE, "pipelines.yaml": PIPELINE + "  status: RUNNING\n"},
        "pipelines.yaml", 9, 3, "spec.status: 'RUNNING' is not one of",
    ),
    Case(
        "pipeline-unknown-spec-field",
        {**VALID_ESTATE, "pipelines.yaml": PIPELINE + "  recipe: base\n"},
        "pipelines.yaml", 9, 3, "spec.recipe: unknown field 'recipe'",
    ),
    Case(
        "lifecycle-missing-execution-role",
        {"lifecycle.yaml": edit(LIFECYCLE, "  executionRole: arn:aws:iam::${target.account}:role/lifecycle\n", "")},
        "lifecycle.yaml", 5, 1, "'executionRole' is a required property",
    ),
    Case(
        "lifecycle-missing-policy-details",
        {"lifecycle.yaml": edit(LIFECYCLE, "  policyDetails:\n    - action: {type: DELETE}\n"
                                "      filter: {type: AGE, value: 90, unit: DAYS}\n", "")},
        "lifecycle.yaml", 5, 1, "'policyDetails' is a required property",
    ),
    Case(
        "lifecycle-wrong-resource-type-enum",
        {"lifecycle.yaml": edit(LIFECYCLE, "resourceType: AMI_IMAGE", "resourceType: AMI")},
        "lifecycle.yaml", 7, 3, "spec.resourceType: 'AMI' is not one of",
    ),
    Case(
        "container-missing-container-type",
        {**VALID_ESTATE, "container.yaml": edit(CONTAINER, "  containerType: DOCKER\n", "")},
        "container.yaml", 5, 1, "'containerType' is a required property",
    ),
    Case(
        "container-missing-target-repository",
        {**VALID_ESTATE, "container.yaml": CONTAINER.split("  targetRepository:")[0]},
        "container.yaml", 5, 1, "'targetRepository' is a required property",
    ),
    Case(
        "workflow-missing-type",
        {"workflow.yaml": edit(WORKFLOW, "  type: BUILD\n", ""), "workflows/flow.yml": WORKFLOW_DOC},
        "workflow.yaml", 5, 1, "'type' is a required property",
    ),
    Case(
        "workflow-wrong-type-enum",
        {"workflow.yaml": edit(WORKFLOW, "type: BUILD", "type: DEPLOY"), "workflows/flow.yml": WORKFLOW_DOC},
        "workflow.yaml", 6, 3, "spec.type: 'DEPLOY' is not one of",
    ),
    # --- identity and references ------------------------------------------------------------
    Case(
        "duplicate-resource-across-files",
        {"infra.yaml": INFRA, "more/infra-copy.yaml": INFRA},
        "more/infra-copy.yaml", 4, 3,
        "InfrastructureConfiguration 'infra' is defined twice for target prod (first at infra.yaml:4:3)",
        count=2,
        also=("defined twice for target dev (first at infra.yaml:4:3)",),
    ),
    Case(
        "unknown-reference",
        {**VALID_ESTATE, "recipes.yaml": edit(RECIPE, "- ref: comp", "- ref: compo")},
        "recipes.yaml", 9, 7,
        "ImageRecipe/base spec.components[0].ref references Component/compo, which is not defined",
    ),
    Case(
        "reference-to-wrong-kind",
        {**VALID_ESTATE, "pipelines.yaml": edit(PIPELINE, "{ref: base}", "{ref: infra}")},
        "pipelines.yaml", 6, 3,
        "ImagePipeline/pipe spec.imageRecipeArn references 'infra', which is a InfrastructureConfiguration "
        "(defined at infra.yaml:4:3), not a ImageRecipe",
    ),
    Case(
        "reference-restricted-to-another-target",
        {**VALID_ESTATE, "infra.yaml": edit(INFRA, "  name: infra\n", "  name: infra\n  targets: [prod]\n")},
        "pipelines.yaml", 7, 3,
        "ImagePipeline/pipe spec.infrastructureConfigurationArn references InfrastructureConfiguration/infra, "
        "which is not defined for target dev (it is defined at infra.yaml:4:3 for other targets)",
    ),
    Case(
        "dependency-cycle-between-two-recipes",
        {
            "a.yaml": edit(RECIPE, "  parentImage: arn:aws:imagebuilder:${target.region}:aws:image/"
                           "amazon-linux-2023-x86/x.x.x\n  components:\n    - ref: comp\n",
                           "  parentImage: {ref: app}\n"),
            "b.yaml": edit(edit(RECIPE, "name: base", "name: app"),
                           "  parentImage: arn:aws:imagebuilder:${target.region}:aws:image/"
                           "amazon-linux-2023-x86/x.x.x\n  components:\n    - ref: comp\n",
                           "  parentImage: {ref: base}\n"),
        },
        "b.yaml", 4, 3, "dependency cycle: ImageRecipe/app -> ImageRecipe/base -> ImageRecipe/app",
    ),
    Case(
        "dependency-cycle-self-reference",
        {"a.yaml": edit(RECIPE, "  parentImage: arn:aws:imagebuilder:${target.region}:aws:image/"
                        "amazon-linux-2023-x86/x.x.x\n  components:\n    - ref: comp\n",
                        "  parentImage: {ref: base}\n")},
        "a.yaml", 4, 3, "dependency cycle: ImageRecipe/base -> ImageRecipe/base",
    ),
    # --- substitution -----------------------------------------------------------------------
    Case(
        "unknown-target-placeholder",
        {"infra.yaml": INFRA + "  description: built in ${target.zone}\n"},
        "infra.yaml", 8, 3, "unknown placeholder ${target.zone}",
    ),
    Case(
        "unknown-vars-placeholder",
        {"infra.yaml": INFRA + "  subnetId: ${vars.subnett}\n"},
        "infra.yaml", 8, 3, "unknown variable ${vars.subnett} for target 'prod'",
        count=2,
        also=("unknown variable ${vars.subnett} for target 'dev'",),
    ),
    Case(
        "vars-placeholder-defined-for-one-target-only",
        {"infra.yaml": INFRA + "  subnetId: ${vars.subnet}\n"},  # only prod defines vars.subnet
        "infra.yaml", 8, 3, "unknown variable ${vars.subnet} for target 'dev'",
    ),
    Case(
        "env-placeholder-not-in-allow-env",
        {"infra.yaml": INFRA + "  description: ${env.HOME}\n"},
        "infra.yaml", 8, 3, "${env.HOME} is not allowed: list 'HOME' under allowEnv in imagesync.yaml",
    ),
    Case(
        "env-placeholder-allowed-but-unset",
        {"infra.yaml": INFRA + "  description: ${env.IMAGESYNC_TEST_UNSET}\n"},
        "infra.yaml", 8, 3,
        "${env.IMAGESYNC_TEST_UNSET} is allowed but the environment variable IMAGESYNC_TEST_UNSET is not set",
        project=PROJECT + "allowEnv: [IMAGESYNC_TEST_UNSET]\n",
        setup=_unset_env,
    ),
    Case(
        "unknown-vars-placeholder-inside-document-file",
        component_with_doc(edit(COMPONENT_DOC, "echo hello", "echo ${vars.greeting}")),
        "components/comp.yml", 9, 20, "unknown variable ${vars.greeting} for target 'prod'",
        count=2,
        also=("unknown variable ${vars.greeting} for target 'dev'",),
    ),
    # --- document files ---------------------------------------------------------------------
    Case(
        "document-file-escapes-with-dotdot",
        {"components.yaml": edit(COMPONENT_FILE, "components/comp.yml", "../comp.yml")},
        "components.yaml", 8, 3, "documentFile '../comp.yml' escapes the manifest root",
    ),
    Case(
        "document-file-absolute-path",
        {"components.yaml": edit(COMPONENT_FILE, "components/comp.yml", f"{OUTSIDE}/comp.yml")},
        "components.yaml", 8, 3, "escapes the manifest root",
    ),
    Case(
        "document-file-symlink-outside",
        {"components.yaml": COMPONENT_FILE},
        "components.yaml", 8, 3, "documentFile 'components/comp.yml' escapes the manifest root",
        setup=_link_document_outside,
        count=2,
        also=("is a link that points outside the manifest root",),
    ),
    Case(
        "document-file-missing",
        {"components.yaml": COMPONENT_FILE},
        "components.yaml", 8, 3, "documentFile 'components/comp.yml' does not exist",
    ),
    Case(
        "document-file-holds-two-documents",
        component_with_doc(COMPONENT_DOC + "---\n" + COMPONENT_DOC),
        "components/comp.yml", 11, 1, "a document file must hold exactly one YAML document",
    ),
    Case(
        "document-file-not-utf8",
        component_with_doc(b"schemaVersion: 1.0\n# caf\xe9\n"),
        "components.yaml", 8, 3, "documentFile 'components/comp.yml' is not UTF-8 text",
    ),
    Case(
        "document-file-larger-than-4mib",
        component_with_doc(COMPONENT_DOC + "# " + "x" * (4 * 1024 * 1024) + "\n"),
        "components.yaml", 8, 3, "documentFile 'components/comp.yml' is larger than 4 MiB",
    ),
    Case(
        "dockerfile-template-file-missing",
        {**VALID_ESTATE, "container.yaml": edit(CONTAINER, "api.Dockerfile", "missing.Dockerfile")},
        "container.yaml", 11, 3, "dockerfileTemplateFile 'missing.Dockerfile' does not exist",
    ),
    Case(
        "dockerfile-template-file-escapes",
        {**VALID_ESTATE, "container.yaml": edit(CONTAINER, "api.Dockerfile", "../api.Dockerfile")},
        "container.yaml", 11, 3, "dockerfileTemplateFile '../api.Dockerfile' escapes the manifest root",
    ),
    Case(
        "manifest-symlink-to-file-outside",
        {"infra.yaml": INFRA},
        "linked.yaml", 0, 0, "is a link that points outside the manifest root",
        setup=_link_manifest_outside,
    ),
    # --- sizes ------------------------------------------------------------------------------
    Case(
        "oversized-inline-document",
        {"components.yaml": COMPONENT_INLINE + "                - echo " + "x" * 16_000 + "\n"},
        "components.yaml", 8, 3, "inline data is limited to 16,000 characters",
        count=None,
    ),
    Case(
        "oversized-document-file",
        component_with_doc(COMPONENT_DOC + "            - echo " + "x" * 16_000 + "\n"),
        "components.yaml", 8, 3, "inline data is limited to 16,000 characters",
        count=None,
    ),
    Case(
        "oversized-dockerfile-template-data",
        {**VALID_ESTATE, "container.yaml": edit(CONTAINER, "  dockerfileTemplateFile: api.Dockerfile\n",
                                                "  dockerfileTemplateData: '" + "#" * 16_001 + "'\n")},
        "container.yaml", 11, 3, "spec.dockerfileTemplateData: ",
    ),
    Case(
        "oversized-dockerfile-template-file",
        {**VALID_ESTATE, "api.Dockerfile": DOCKERFILE + "#" * 16_000 + "\n"},
        "container.yaml", 11, 3, "inline data is limited to 16,000 characters",
    ),
    Case(
        "manifest-file-larger-than-4mib",
        {"infra.yaml": INFRA + "# " + "x" * (4 * 1024 * 1024) + "\n"},
        "infra.yaml", 1, 1, "the file is larger than 4 MiB",
    ),
    Case(
        "yaml-alias-bomb",
        {"bomb.yaml": alias_bomb(9)},
        "bomb.yaml", 1, 15, f"more than {MAX_NODES} nodes (a YAML alias bomb?)",
    ),
    Case(
        "manifest-not-utf8",
        {"infra.yaml": INFRA.encode() + b"  description: caf\xe9\n"},
        "infra.yaml", 1, 1, "the file is not UTF-8 text",
    ),
    # --- AWSTOE component documents ---------------------------------------------------------
    Case(
        "awstoe-unknown-action-in-file",
        component_with_doc(edit(COMPONENT_DOC, "action: ExecuteBash", "action: ExecuteBashScript")),
        "components/comp.yml", 6, 9, "unknown action 'ExecuteBashScript'",
    ),
    Case(
        "awstoe-unknown-action-inline",
        {"components.yaml": edit(COMPONENT_INLINE, "action: ExecuteBash", "action: executebash")},
        "components.yaml", 14, 13, "unknown action 'executebash'; did you mean 'ExecuteBash'?",
    ),
    Case(
        "awstoe-duplicate-step-name",
        component_with_doc(COMPONENT_DOC + "      - name: Hello\n        action: Reboot\n"),
        "components/comp.yml", 10, 9, "duplicate step name 'Hello' in this phase (first defined at line 5, column 9)",
    ),
    Case(
        "awstoe-map-inputs-for-list-action",
        component_with_doc(edit(COMPONENT_DOC, "action: ExecuteBash\n        inputs:\n          commands:\n"
                                "            - echo hello\n",
                                "action: CreateFile\n        inputs:\n          path: /etc/motd\n")),
        "components/comp.yml", 7, 9, "the inputs of action CreateFile must be a list of maps",
    ),
    Case(
        "awstoe-list-inputs-for-map-action",
        component_with_doc(edit(COMPONENT_DOC, "          commands:\n", "          - commands:\n")),
        "components/comp.yml", 7, 9, "the inputs of action ExecuteBash must be a map",
    ),
    Case(
        "awstoe-unresolvable-reference",
        component_with_doc(edit(COMPONENT_DOC, "echo hello", "echo {{ Greeting }}")),
        "components/comp.yml", 9, 15, "unknown reference '{{ Greeting }}'",
    ),
    Case(
        "awstoe-missing-phases",
        component_with_doc("schemaVersion: 1.0\nname: empty\n"),
        "components/comp.yml", 1, 1, "the component document is missing 'phases'",
    ),
    Case(
        "awstoe-document-file-empty",
        component_with_doc(""),
        "components/comp.yml", 1, 1, "the document file is empty",
    ),
    # --- workflow documents -----------------------------------------------------------------
    Case(
        "workflow-document-unknown-action",
        {"workflow.yaml": WORKFLOW, "workflows/flow.yml": edit(WORKFLOW_DOC, "LaunchInstance", "StartInstance")},
        "workflows/flow.yml", 4, 5, "unknown workflow action 'StartInstance'",
    ),
    Case(
        "workflow-document-unknown-step-output",
        {"workflow.yaml": WORKFLOW, "workflows/flow.yml": edit(WORKFLOW_DOC, ".Launch.", ".Lunch.")},
        "workflows/flow.yml", 11, 7, "unknown step output reference '$.stepOutputs.Lunch'",
    ),
    Case(
        "workflow-inline-document-duplicate-step",
        {"workflow.yaml": edit(WORKFLOW, "  documentFile: workflows/flow.yml\n",
                               "  document:\n" + textwrap.indent(edit(WORKFLOW_DOC, "name: Terminate", "name: Launch"),
                                                                 "    "))},
        "workflow.yaml", 15, 9, "duplicate step name 'Launch' (first defined at line 11, column 9)",
    ),
    # --- imagesync.yaml ---------------------------------------------------------------------
    Case(
        "missing-imagesync-yaml",
        {"infra.yaml": INFRA},
        "imagesync.yaml", 0, 0, "no imagesync.yaml in",
        project=None,
    ),
    Case(
        "empty-imagesync-yaml",
        {"infra.yaml": INFRA},
        "imagesync.yaml", 1, 1, "imagesync.yaml is empty",
        project="# nothing here yet\n",
    ),
    Case(
        "imagesync-yaml-bad-region",
        {"infra.yaml": INFRA},
        "imagesync.yaml", 9, 5, "targets[1].region: 'Europe' is not an AWS Region code, e.g. 'us-east-1'",
        project=edit(PROJECT, "region: eu-west-1", "region: Europe"),
    ),
    Case(
        "imagesync-yaml-duplicate-target-names",
        {"infra.yaml": INFRA},
        "imagesync.yaml", 8, 5, "target 'prod' is defined twice",
        project=edit(PROJECT, "name: dev", "name: prod"),
    ),
    Case(
        "imagesync-yaml-unknown-field",
        {"infra.yaml": INFRA},
        "imagesync.yaml", 11, 1, "allowENV: unknown field 'allowENV'",
        project=PROJECT + "allowENV: [HOME]\n",
    ),
    Case(
        "imagesync-yaml-missing-targets",
        {"infra.yaml": INFRA},
        "imagesync.yaml", 1, 1, "'targets' is a required property",
        project="project: bad-manifests\n",
    ),
    Case(
        "imagesync-yaml-bad-account",
        {"infra.yaml": INFRA},
        "imagesync.yaml", 10, 5,
        "targets[1].account: YAML read the unquoted value as the number 222222222222, but it must be a string: "
        "quote it",
        project=edit(PROJECT, 'account: "222222222222"', "account: 222222222222"),
    ),
    Case(
        "imagesync-yaml-two-documents",
        {"infra.yaml": INFRA},
        "imagesync.yaml", 12, 1, "imagesync.yaml must hold exactly one YAML document",
        project=PROJECT + "---\nproject: second\n",
    ),
]


# Real loader bugs: each case is what the loader should report; today it crashes instead.
# Inputs that once crashed the loader; each is kept with the bug it exposed.
REGRESSION_CASES: list[tuple[Case, str]] = [
    (
        Case(
            "kind-not-a-string",
            {"infra.yaml": edit(INFRA, "kind: InfrastructureConfiguration", "kind: [InfrastructureConfiguration]")},
            "infra.yaml", 2, 1, "unknown kind",
            count=None,
        ),
        "loader._Loader._envelope tests `kind not in REGISTRY`, and Registry.__contains__ does `name in dict`, "
        "so a list or map `kind` raises TypeError: unhashable type instead of 'unknown kind'",
    ),
    (
        Case(
            "metadata-targets-item-not-a-string",
            {"infra.yaml": edit(INFRA, "  name: infra\n", "  name: infra\n  targets: [[prod]]\n")},
            "infra.yaml", 5, 13, "is not of type 'string'",
            count=None,
        ),
        "loader._Loader._resources tests `t not in known_targets` for each metadata.targets item before the "
        "schema runs, so a list or map item raises TypeError: unhashable type instead of a schema problem",
    ),
    (
        Case(
            "document-file-with-nul-byte",
            {"components.yaml": edit(COMPONENT_FILE, "documentFile: components/comp.yml",
                                     'documentFile: "components/comp\\0.yml"'),
             "components/comp.yml": COMPONENT_DOC},
            "components.yaml", 8, 3, "documentFile",
            count=None,
        ),
        "loader._Loader.run resolves (path.parent / documentFile).resolve() unguarded; a NUL byte in the "
        "path raises ValueError: embedded null byte (so does _inside, which catches only OSError/RuntimeError)",
    ),
    (
        Case(
            "dockerfile-template-file-with-nul-byte",
            {**VALID_ESTATE, "container.yaml": edit(CONTAINER, "dockerfileTemplateFile: api.Dockerfile",
                                                    'dockerfileTemplateFile: "api\\0.Dockerfile"')},
            "container.yaml", 11, 3, "dockerfileTemplateFile",
            count=None,
        ),
        "same as document-file-with-nul-byte, for dockerfileTemplateFile: ValueError: embedded null byte",
    ),
]

PARAMS = [pytest.param(c, id=c.id) for c in CASES] + [
    pytest.param(c, id=c.id) for c, _bug in REGRESSION_CASES
]


# --- running a case ------------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory outside every manifest root."""
    return tmp_path_factory.mktemp("outside")


def write_tree(
    root: Path, files: dict[str, str | bytes], project: str | None = PROJECT, outside: Path | None = None
) -> Path:
    """Write `imagesync.yaml` (unless `project` is None) and `files` below `root`."""
    if project is not None:
        (root / "imagesync.yaml").write_text(project, encoding="utf-8")
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            if outside is not None:
                content = content.replace(OUTSIDE, str(outside))
            path.write_text(content, encoding="utf-8")
    return root


def prepare(case: Case, root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_tree(root, case.files, case.project, outside)
    if case.setup is not None:
        case.setup(root, outside, monkeypatch)
    return root


def describe(result: ValidationResult) -> str:
    return "\n".join(str(p) for p in result.problems) or "(no problems)"


@pytest.mark.parametrize("case", PARAMS)
def test_bad_manifest(case: Case, tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = prepare(case, tmp_path, outside, monkeypatch)
    result = validate(root)
    assert not result.ok
    assert result.desired is None
    found = [
        p for p in result.problems
        if (p.location.path, p.location.line, p.location.column) == (case.file, case.line, case.column)
        and case.message in p.message
    ]
    assert found, f"expected {case.file}:{case.line}:{case.column}: ...{case.message}... in\n{describe(result)}"
    for fragment in case.also:
        assert any(fragment in p.message for p in result.problems), f"no {fragment!r} in\n{describe(result)}"
    if case.count is not None:
        assert len(result.problems) == case.count, describe(result)


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 45


@pytest.mark.parametrize("case", PARAMS)
def test_validation_only_raises_imagesync_errors(
    case: Case, tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = prepare(case, tmp_path, outside, monkeypatch)
    with pytest.raises(ManifestError) as excinfo:
        load(root)
    assert isinstance(excinfo.value, ImagesyncError)
    assert excinfo.value.problems


# --- valid trees: the cases above break something that is otherwise right -----------------------


def test_base_estate_is_valid(tmp_path: Path) -> None:
    result = validate(write_tree(tmp_path, VALID_ESTATE))
    assert result.ok, describe(result)
    assert result.desired is not None
    kinds = {kind for (_t, kind, _n) in result.desired.resources}
    assert len(kinds) == 8
    assert len(result.desired.resources) == 16  # every resource in both targets


def test_shell_variables_reach_the_document_untouched(tmp_path: Path) -> None:
    doc = edit(COMPONENT_DOC, "echo hello", 'echo "${HOME} ${PATH:-/bin} $${USER} ${target.region}"')
    inline = edit(edit(COMPONENT_INLINE, "name: comp", "name: inline-comp"), "echo hello", "echo ${HOME}")
    root = write_tree(tmp_path, {**component_with_doc(doc), "inline.yaml": inline})
    result = validate(root)
    assert result.ok, describe(result)
    assert result.desired is not None
    for target, region in (("prod", "us-east-1"), ("dev", "eu-west-1")):
        from_file = result.desired.resources[(target, "Component", "comp")].document
        assert from_file is not None
        assert f'echo "${{HOME}} ${{PATH:-/bin}} $${{USER}} {region}"' in from_file
        from_inline = result.desired.resources[(target, "Component", "inline-comp")].document
        assert from_inline is not None and "echo ${HOME}" in from_inline


def test_test_only_document_is_valid(tmp_path: Path) -> None:
    doc = edit(COMPONENT_DOC, "name: build", "name: test")
    result = validate(write_tree(tmp_path, component_with_doc(doc)))
    assert result.ok, describe(result)
    assert result.desired is not None
    assert len(result.desired.resources) == 2


def test_vars_and_allowed_env_are_substituted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESYNC_TEST_TEAM", "platform")
    infra = edit(INFRA, "  name: infra\n", "  name: infra\n  targets: [prod]\n")
    infra += "  subnetId: ${vars.subnet}\n  description: owned by ${env.IMAGESYNC_TEST_TEAM} in ${target.account}\n"
    project = PROJECT + "allowEnv: [IMAGESYNC_TEST_TEAM]\n"
    result = validate(write_tree(tmp_path, {"infra.yaml": infra}, project))
    assert result.ok, describe(result)
    assert result.desired is not None
    spec = result.desired.resources[("prod", "InfrastructureConfiguration", "infra")].spec
    assert spec["subnetId"] == "subnet-1"
    assert spec["description"] == "owned by platform in 111111111111"


def test_examples_are_valid() -> None:
    result = validate(Path(__file__).resolve().parents[2] / "examples" / "manifests")
    assert result.ok, describe(result)


# --- whole-tree behaviour ------------------------------------------------------------------------


def test_reports_every_problem_not_just_the_first(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        **VALID_ESTATE,
        # 1. malformed YAML in one file does not hide the others
        "broken.yaml": "apiVersion: imagesync/v1\nkind: [Component\n",
        # 2. a schema violation
        "infra.yaml": edit(INFRA, "instanceTypes: [m7i.large]", "instanceTypes: m7i.large"),
        # 3. an unknown reference
        "pipelines.yaml": edit(PIPELINE, "{ref: dist}", "{ref: distribution}"),
        # 4. an AWSTOE problem inside a document file
        "components/comp.yml": edit(COMPONENT_DOC, "action: ExecuteBash", "action: RunBash"),
        # 5. an unknown placeholder
        "lifecycle.yaml": edit(LIFECYCLE, "${target.account}", "${target.acount}"),
    }
    result = validate(write_tree(tmp_path, files))
    got = {(p.location.path, p.location.line, p.location.column) for p in result.problems}
    assert got == {
        ("broken.yaml", 3, 1),
        ("infra.yaml", 7, 3),
        ("pipelines.yaml", 8, 3),
        ("components/comp.yml", 6, 9),
        ("lifecycle.yaml", 6, 3),
    }, describe(result)
    assert len(result.problems) == 5, describe(result)


def test_problems_are_sorted_by_place(tmp_path: Path) -> None:
    files = {
        "b.yaml": edit(INFRA, "name: infra", "name: infra-b") + "  bogus: 1\n",
        "a.yaml": edit(INFRA, "name: infra", "name: infra-a") + "  bogus: 1\n  other: 2\n",
    }
    result = validate(write_tree(tmp_path, files))
    places = [(p.location.path, p.location.line, p.location.column) for p in result.problems]
    assert places == sorted(places) and len(places) >= 2


def test_every_independent_cycle_is_reported(tmp_path: Path) -> None:
    def recipe(name: str, parent: str) -> str:
        return (
            "apiVersion: imagesync/v1\nkind: ImageRecipe\nmetadata:\n  name: " + name
            + "\nspec:\n  version: 1.0.0\n  parentImage: {ref: " + parent + "}\n"
        )

    files = {
        "a.yaml": recipe("aaa1", "aaa2") + "---\n" + recipe("aaa2", "aaa1"),
        "b.yaml": recipe("bbb1", "bbb2") + "---\n" + recipe("bbb2", "bbb1"),
    }
    result = validate(write_tree(tmp_path, files))
    cycles = [p for p in result.problems if "dependency cycle" in p.message]
    assert {p.location.path for p in cycles} == {"a.yaml", "b.yaml"}, describe(result)


def test_document_file_named_per_target_is_not_read_as_a_manifest(tmp_path: Path) -> None:
    files = {
        "components.yaml": edit(COMPONENT_FILE, "components/comp.yml", "docs/${target.name}.yml"),
        "docs/prod.yml": edit(COMPONENT_DOC, "echo hello", "echo prod"),
        "docs/dev.yml": edit(COMPONENT_DOC, "echo hello", "echo dev"),
    }
    result = validate(write_tree(tmp_path, files))
    assert result.ok, describe(result)
    assert result.desired is not None
    assert "echo prod" in (result.desired.resources[("prod", "Component", "comp")].document or "")
    assert "echo dev" in (result.desired.resources[("dev", "Component", "comp")].document or "")


def test_alias_bomb_fails_fast_without_blowing_up_memory(tmp_path: Path) -> None:
    """In a fresh process with a 1 GiB address-space cap: no MemoryError, a small peak RSS, one problem."""
    root = write_tree(tmp_path, {"bomb.yaml": alias_bomb(9)})
    script = textwrap.dedent(
        """\
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from imagesync.api import validate
        result = validate(sys.argv[1])
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child of a large
        # pytest process would report the parent's high-water mark as its own.
        status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
        print(json.dumps({
            "problems": [p.as_dict() for p in result.problems],
            "peak_kib": int(status),
        }))
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(root)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(p["file"], p["line"], p["column"]) for p in report["problems"]] == [("bomb.yaml", 1, 15)]
    assert "alias bomb" in report["problems"][0]["message"]
    assert report["peak_kib"] < 300 * 1024, f"peak RSS {report['peak_kib'] // 1024} MiB while refusing an alias bomb"


LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=6),
    st.sampled_from(["prod", "comp", "base", "infra", "${target.zone}", "${vars.subnet}", "{{ X }}", "../x", "/etc",
                     ".", "components/comp.yml", "1.0", "x.x.x"]),
)
VALUES = st.recursive(
    LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["ref", "name", "type", "documentFile", "document", "x"]), inner, max_size=3),
    ),
    max_leaves=6,
)
MUTABLE = [yaml.safe_load(text) for text in (COMPONENT_INLINE, RECIPE, INFRA, PIPELINE, CONTAINER, WORKFLOW)]


def _paths(value: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*path, i))
    return found


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MUTABLE), st.data(), VALUES)
def test_any_value_anywhere_gives_problems_not_crashes(manifest: dict, data: st.DataObject, value: object) -> None:
    """Replace one node of a valid manifest with an arbitrary value: load() returns or raises ManifestError.

    `kind` and `metadata.targets` items are left out: see REGRESSION_CASES.
    """
    manifest = copy.deepcopy(manifest)
    places = [p for p in _paths(manifest)[1:] if p != ("kind",)]
    place = data.draw(st.sampled_from(places))
    node = manifest
    for key in place[:-1]:
        node = node[key]
    node[place[-1]] = value
    with tempfile.TemporaryDirectory() as directory:
        root = write_tree(Path(directory), {
            "components/comp.yml": COMPONENT_DOC, "api.Dockerfile": DOCKERFILE, "workflows/flow.yml": WORKFLOW_DOC,
            "fuzz.yaml": yaml.safe_dump(manifest, sort_keys=False),
        })
        try:
            load(root)
        except ManifestError as err:
            assert err.problems
            assert all(p.location.path for p in err.problems)


def test_deeply_nested_flow_collections_are_refused_not_a_crash(tmp_path: Path) -> None:
    """In a fresh process, so a crash of the parser cannot take the test run with it."""
    depth = 60_000
    root = write_tree(tmp_path, {"deep.yaml": "a: " + "[" * depth + "]" * depth + "\n"})
    script = textwrap.dedent(
        """\
        import json, sys
        from imagesync.api import validate
        print(json.dumps([p.as_dict() for p in validate(sys.argv[1]).problems]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(root)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-500:]}"
    problems = json.loads(done.stdout)
    assert [p["file"] for p in problems] == ["deep.yaml"]
    assert "nests" in problems[0]["message"]


def test_nonexistent_root_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = validate(missing)
    assert not result.ok
    assert [(p.location.path, p.message) for p in result.problems] == [(str(missing), "is not a directory")]
