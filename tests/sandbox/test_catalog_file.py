"""`--catalog FILE`: extra or replacement catalog entries, over HTTP with real boto3, and bad files at the CLI.

A catalog file is YAML or JSON with `components`, `images` and `workflows` lists (the format the
built-in catalog itself uses); entries may be owned by ThirdParty or AWSMarketplace and may be
limited to some regions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagesync.sandbox import RunningSandbox, catalog, running
from support import make_client

AMAZON = "arn:aws:imagebuilder:us-east-1:aws"
MARKETPLACE = "arn:aws:imagebuilder:us-east-1:aws-marketplace"
THIRD_PARTY = "arn:aws:imagebuilder:us-east-1:third-party"

EXTRA = """\
components:
  - name: corp-agent-linux
    platform: Linux
    description: The corporate monitoring agent.
    supportedOsVersions: [Amazon Linux 2023]
    versions: ["1.0.0", "1.0.9", {version: "1.0.10", date: 2025-06-01}]
    parameters:
      - {name: Endpoint, type: string, default: https://monitor.example.com}
  - name: update-linux            # replaces the built-in update-linux
    platform: Linux
    versions: ["9.0.0"]
    document: |
      schemaVersion: 1.0
      phases:
        - name: build
          steps:
            - name: Patch
              action: UpdateOS
  - name: eu-only-linux
    platform: Linux
    versions: ["1.0.0"]
    regions: [eu-west-1]
images:
  - name: corp-base-al2023
    platform: Linux
    osVersion: Amazon Linux 2023
    versions: ["2025.3.1", "2025.12.1"]
workflows:
  - name: corp-build
    type: BUILD
    versions: ["1.0.0", "1.1.0"]
"""

SELLERS = {
    "components": [
        {"name": "cis-hardening-linux", "platform": "Linux", "owner": "ThirdParty", "type": "BUILD",
         "versions": ["1.0.0", "1.2.0"]},
        {"name": "falcon-sensor-linux", "platform": "Linux", "owner": "AWSMarketplace", "versions": ["2.1.0"]},
    ],
    "images": [
        {"name": "cis-al2023-level-1", "platform": "Linux", "osVersion": "Amazon Linux 2023",
         "owner": "AWSMarketplace", "versions": ["2025.10.1"]},
    ],
}  # fmt: skip


def _newest_builtin_component(name: str) -> str:
    """The numerically greatest version of a built-in component (what ``x.x.x`` must resolve to)."""
    versions = [r["version"] for r in catalog.components("us-east-1") if r["name"] == name]
    assert versions, name
    return max(versions, key=lambda v: tuple(int(n) for n in v.split(".")))


@pytest.fixture
def catalog_files(tmp_path: Path) -> tuple[str, str]:
    extra = tmp_path / "extra.yaml"
    extra.write_text(EXTRA)
    sellers = tmp_path / "sellers.json"
    sellers.write_text(json.dumps(SELLERS))
    return str(extra), str(sellers)


@pytest.fixture
def sandbox(catalog_files: tuple[str, str]) -> Iterator[RunningSandbox]:
    with running(catalog_files=catalog_files) as served:
        yield served


@pytest.fixture
def client(sandbox: RunningSandbox) -> Any:
    return make_client(sandbox.endpoint_url, retries={"max_attempts": 1, "mode": "standard"})


def test_a_file_adds_a_component_with_versions_and_parameters(client: Any) -> None:
    """An added component lists under owner=Amazon, resolves wildcards numerically and has its parameters."""
    got = client.get_component(componentBuildVersionArn=f"{AMAZON}:component/corp-agent-linux/1.0.x")["component"]
    assert got["arn"] == f"{AMAZON}:component/corp-agent-linux/1.0.10/1"
    assert got["dateCreated"] == "2025-06-01T00:00:00.000Z"
    assert got["parameters"] == [
        {"name": "Endpoint", "type": "string", "defaultValue": ["https://monitor.example.com"]}
    ]
    assert got["type"] == "BUILD" and got["owner"] == "Amazon"
    assert yaml.safe_load(got["data"])["schemaVersion"] == 1.0
    rows = client.list_components(owner="Amazon", filters=[{"name": "name", "values": ["corp-agent-linux"]}])
    listed = []
    params: dict[str, Any] = {"owner": "Amazon", "filters": [{"name": "name", "values": ["corp-agent-linux"]}]}
    while True:
        listed += rows["componentVersionList"]
        if "nextToken" not in rows:
            break
        params["nextToken"] = rows["nextToken"]
        rows = client.list_components(**params)
    assert [r["version"] for r in listed] == ["1.0.0", "1.0.9", "1.0.10"]


def test_an_override_replaces_the_built_in_entry(client: Any) -> None:
    """A file entry with a built-in's kind, owner and name replaces all of its versions."""
    got = client.get_component(componentBuildVersionArn=f"{AMAZON}:component/update-linux/x.x.x")["component"]
    assert got["version"] == "9.0.0"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_component(componentBuildVersionArn=f"{AMAZON}:component/update-linux/1.0.2/1")
    # built-ins the file does not name are untouched
    cli = client.get_component(componentBuildVersionArn=f"{AMAZON}:component/aws-cli-version-2-linux/x.x.x")
    assert cli["component"]["version"] == _newest_builtin_component("aws-cli-version-2-linux")


@pytest.mark.parametrize(
    ("owner", "account", "names"),
    [
        ("ThirdParty", "third-party", ["cis-hardening-linux"]),
        ("AWSMarketplace", "aws-marketplace", ["falcon-sensor-linux"]),
    ],
)
def test_third_party_and_marketplace_entries_list_under_their_owner(
    client: Any, owner: str, account: str, names: list[str]
) -> None:
    """Entries with `owner:` list only under that ownership filter, with that ARN account segment."""
    rows = client.list_components(owner=owner)["componentVersionList"]
    assert sorted({r["name"] for r in rows}) == names
    assert all(r["arn"].startswith(f"arn:aws:imagebuilder:us-east-1:{account}:component/") for r in rows)
    assert all(r["owner"] == owner for r in rows)
    # a seller's entry must not leak into the Amazon listing: walk every page of it
    amazon: set[str] = set()
    params: dict[str, Any] = {"owner": "Amazon", "byName": True, "maxResults": 25}
    pages = 0
    while True:
        page = client.list_components(**params)
        pages += 1
        amazon |= {r["name"] for r in page["componentVersionList"]}
        if "nextToken" not in page:
            break
        params["nextToken"] = page["nextToken"]
    assert pages > 1  # the built-in catalog is larger than one page, so paging was exercised
    assert "corp-agent-linux" in amazon  # file entries without an owner do list under Amazon
    assert not amazon & set(names)


def test_a_recipe_uses_marketplace_and_third_party_components_and_image(client: Any) -> None:
    """Recipes resolve catalog-file components and parent images of every owner."""
    arn = client.create_image_recipe(
        name="sellers",
        semanticVersion="1.0.0",
        parentImage=f"{MARKETPLACE}:image/cis-al2023-level-1/x.x.x",
        components=[
            {"componentArn": f"{THIRD_PARTY}:component/cis-hardening-linux/1.x.x"},
            {"componentArn": f"{MARKETPLACE}:component/falcon-sensor-linux/2.1.0/1"},
            {"componentArn": f"{AMAZON}:component/corp-agent-linux/x.x.x"},
        ],
    )["imageRecipeArn"]
    assert client.get_image_recipe(imageRecipeArn=arn)["imageRecipe"]["platform"] == "Linux"
    images = client.list_images(owner="AWSMarketplace")["imageVersionList"]
    assert [(r["name"], r["version"], r["owner"]) for r in images] == [
        ("cis-al2023-level-1", "2025.10.1", "AWSMarketplace")
    ]


def test_file_images_and_workflows(client: Any) -> None:
    """A file adds images (dated versions) and workflows, resolvable like the built-ins."""
    image = client.get_image(imageBuildVersionArn=f"{AMAZON}:image/corp-base-al2023/2025.x.x")["image"]
    assert image["version"] == "2025.12.1/1" and image["osVersion"] == "Amazon Linux 2023"
    workflow = client.get_workflow(workflowBuildVersionArn=f"{AMAZON}:workflow/build/corp-build/x.x.x")["workflow"]
    assert workflow["version"] == "1.1.0" and workflow["type"] == "BUILD"
    assert yaml.safe_load(workflow["data"])["steps"]
    names = {r["name"] for r in client.list_workflows(owner="Amazon")["workflowVersionList"]}
    assert {"corp-build", "build-image"} <= names


def test_regions_limit_where_an_entry_exists(sandbox: RunningSandbox, client: Any) -> None:
    """An entry with `regions:` exists there and nowhere else."""
    eu = make_client(sandbox.endpoint_url, "eu-west-1")
    eu_arn = "arn:aws:imagebuilder:eu-west-1:aws:component/eu-only-linux/x.x.x"
    assert eu.get_component(componentBuildVersionArn=eu_arn)["component"]["version"] == "1.0.0"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_component(componentBuildVersionArn=f"{AMAZON}:component/eu-only-linux/x.x.x")


# --- bad files: `imagesync sandbox serve --catalog F` exits 1 naming the file and the entry ----------

BAD_FILES = [
    ("not-yaml", "components: [\n  - name: x\n", "not valid YAML or JSON"),
    ("list-at-top", "- name: x\n", "a catalog file is a mapping"),
    ("unknown-section", "recipes: []\n", "unknown sections ['recipes']"),
    ("unknown-field", "components:\n  - {name: x, platform: Linux, versions: ['1.0.0'], colour: red}\n",
     "components[0] 'x': unknown fields ['colour']"),
    ("missing-platform", "components:\n  - {name: x, versions: ['1.0.0']}\n",
     "components[0] 'x': missing required fields ['platform']"),
    ("float-version", "components:\n  - {name: x, platform: Linux, versions: [1.0]}\n",
     "components[0] 'x': bad version 1.0"),
    ("two-node-version", "images:\n  - {name: img, platform: Linux, osVersion: Ubuntu 22, versions: ['2025.1']}\n",
     "images[0] 'img': bad version '2025.1'"),
    ("duplicate-version", "workflows:\n  - {name: wf, type: BUILD, versions: ['1.0.0', '1.0.0']}\n",
     "workflows[0] 'wf': duplicate versions 1.0.0"),
    ("bad-owner", "components:\n  - {name: x, platform: Linux, versions: ['1.0.0'], owner: Somebody}\n",
     "components[0] 'x': bad owner 'Somebody'"),
    ("bad-document",
     "components:\n  - {name: x, platform: Linux, versions: ['1.0.0'], document: 'schemaVersion: 1.0'}\n",
     "components[0] 'x': A component document needs a list of 'phases'"),
    ("type-mismatch", "components:\n  - name: x\n    platform: Linux\n    type: BUILD\n    versions: ['1.0.0']\n"
     "    document: |\n      schemaVersion: 1.0\n      phases: [{name: test, steps: [{name: T, action: ExecuteBash,"
     " inputs: {commands: [true]}}]}]\n", "'type' is BUILD but the document makes it TEST"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "message"), BAD_FILES, ids=[case for case, _, _ in BAD_FILES])
def test_bad_catalog_file_exits_1_naming_file_and_entry(tmp_path: Path, case: str, text: str, message: str) -> None:
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "imagesync", "sandbox", "serve", "--catalog", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""  # never served: no endpoint line
    assert str(path) in proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_entry_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.yaml"
    path.write_text(
        "components:\n  - {name: ok, platform: Linux, versions: ['1.0.0']}\n  - {name: bad, versions: []}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "imagesync", "sandbox", "serve", "--catalog", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert f"{path}:3:5: components[1] 'bad'" in proc.stderr


def test_missing_catalog_file_exits_1(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "imagesync", "sandbox", "serve", "--catalog", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert f"catalog file {missing}: not found" in proc.stderr
    assert "Traceback" not in proc.stderr
