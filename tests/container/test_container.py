"""The Dockerfile builds an image that runs imagesync as a user would run it in a container.

No Docker engine or registry is needed: a Debian base is made here with debootstrap (cached under
/var/cache/imagesync-ci, keyed by release and recipe), the Dockerfile is built on it with buildah
(chroot isolation), and the image is run with `buildah run`. The test proves that the image
reports the package's version, runs as the non-root user 10001 with a writable cache and no
compiler, pip or build leftovers inside, carries the OCI labels and entrypoint it promises, and
runs the reconcile loop once (`reconcile --once`) on a manifest directory mounted read-only,
against a sandbox served on the host, whose resources boto3 then finds there.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support import REGION, make_client, read_line, stop_process

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION: str = PYPROJECT["project"]["version"]
LICENSE: str = PYPROJECT["project"]["license"]["text"]

RELEASE = "bookworm"
MIRROR = os.environ.get("IMAGESYNC_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# Debian's python3 for the virtual environment, git and ca-certificates for what the image itself
# installs (so that the final stage's apt-get has nothing to download but its lists).
INCLUDE = ("python3", "python3-venv", "ca-certificates", "git")
CACHE = Path(os.environ.get("IMAGESYNC_CI_CACHE", "/var/cache/imagesync-ci"))
BASE = f"localhost/imagesync-base:{RELEASE}"
IMAGE = "localhost/imagesync:test"
BUILD_STAGE = "localhost/imagesync:test-build"
# The machine's CA bundle goes into the base, so that pip in the build stage trusts what the host
# trusts (a proxy that inspects TLS included), as a base an organisation builds for itself would.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Bumped whenever the way the base is made changes: a cached base of another recipe is rebuilt.
RECIPE = 1
BASE_KEY_LABEL = "io.imagesync.ci.base-key"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Read at import: the suite's autouse fixtures unset CI for every test.
REQUIRED = bool(os.environ.get("CI") or os.environ.get("IMAGESYNC_CONTAINER_TEST"))

pytestmark = [pytest.mark.container, pytest.mark.slow]


def _tools_or_skip() -> None:
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        reason = f"{' and '.join(missing)} not installed (apt-get install buildah debootstrap)"
    elif os.geteuid() != 0:
        reason = "debootstrap and buildah's chroot isolation need root"
    else:
        return
    if REQUIRED:
        pytest.fail(f"container test: {reason}, and CI or IMAGESYNC_CONTAINER_TEST is set", pytrace=False)
    pytest.skip(f"container test: {reason}")


def run(cmd: list[str], timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done


def base_key() -> str:
    recipe = {
        "release": RELEASE,
        "mirror": MIRROR,
        "include": INCLUDE,
        "recipe": RECIPE,
        "ca": hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest() if HOST_CA_BUNDLE.is_file() else None,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def image_labels(name: str) -> dict[str, str] | None:
    done = run(["buildah", "inspect", "--type", "image", name], check=False)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout)["OCIv1"]["config"].get("Labels") or {}


@contextlib.contextmanager
def cache_lock() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_rootfs_tarball(tarball: Path) -> None:
    """debootstrap a minimal Debian with INCLUDE, trimmed like a slim image, as a tarball."""
    work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=CACHE))
    try:
        rootfs = work / "rootfs"
        try:
            run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}", RELEASE, str(rootfs), MIRROR],
                timeout=900,
            )
        except AssertionError as failure:
            log = rootfs / "debootstrap" / "debootstrap.log"
            detail = log.read_text(errors="replace")[-4000:] if log.is_file() else "(no debootstrap.log)"
            raise AssertionError(f"{failure}\ndebootstrap.log (end):\n{detail}") from None
        for junk in ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info",
                     "usr/share/locale", "var/log"):
            for child in (rootfs / junk).glob("*"):
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        if HOST_CA_BUNDLE.is_file():
            shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
        partial = tarball.with_suffix(".partial")
        run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."])
        partial.rename(tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_base() -> None:
    """BASE in buildah's storage, made from the cached tarball, which is made from nothing when
    absent. Called with the cache lock held."""
    key = base_key()
    if (image_labels(BASE) or {}).get(BASE_KEY_LABEL) == key:
        return
    tarball = CACHE / f"debootstrap-{RELEASE}-{key}.tar"
    if not tarball.is_file():
        for stale in CACHE.glob(f"debootstrap-{RELEASE}-*.tar"):
            stale.unlink()
        make_rootfs_tarball(tarball)
    container = run(["buildah", "from", "scratch"]).stdout.strip()
    try:
        run(["buildah", "add", "--quiet", container, str(tarball), "/"])
        run(["buildah", "config", "--env", f"PATH={PATH}", "--cmd", "/bin/bash",
             "--label", f"{BASE_KEY_LABEL}={key}", container])
        run(["buildah", "commit", "--quiet", "--rm", container, BASE])
    except BaseException:
        run(["buildah", "rm", container], check=False)
        raise


def build_image() -> None:
    """The Dockerfile's build stage (tagged, so that its cached layers are kept) and the image."""
    bud = ["buildah", "bud", "--quiet", "--isolation", "chroot", "--layers", "--build-arg", f"BASE={BASE}"]
    run([*bud, "--target", "build", "-t", BUILD_STAGE, str(ROOT)], timeout=900)
    run([*bud, "--build-arg", f"VERSION={VERSION}", "-t", IMAGE, str(ROOT)], timeout=900)


def layer_chain(image: str) -> list[str]:
    return json.loads(run(["buildah", "inspect", "--type", "image", image]).stdout)["OCIv1"]["rootfs"]["diff_ids"]


def prune_stale_layers() -> None:
    """Untagged images (--layers' cache) that this build's two tagged images do not start with:
    a machine that runs CI for every change keeps one build's cache, not one per change."""
    keep = [layer_chain(IMAGE), layer_chain(BUILD_STAGE)]
    dangling = run(["buildah", "images", "--all", "--quiet", "--no-trunc", "--filter", "dangling=true"])
    for image_id in dict.fromkeys(dangling.stdout.split()):
        chain = layer_chain(image_id)
        if not any(full[: len(chain)] == chain for full in keep):
            run(["buildah", "rmi", image_id], check=False)


def write_manifests(root: Path) -> Path:
    """A project with one target in the sandbox's default account: a component and an infrastructure
    configuration. World-readable: the image's user is not the owner of the files."""
    root.mkdir(mode=0o755)
    (root / "imagesync.yaml").write_text(
        "project: container-smoke\n"
        "targets:\n"
        f"  - name: sandbox\n    region: {REGION}\n    account: \"123456789012\"\n"
        "lock:\n  backend: file\n"
    )
    (root / "manifests.yaml").write_text(
        "apiVersion: imagesync/v1\n"
        "kind: InfrastructureConfiguration\n"
        "metadata:\n  name: build-in-container\n"
        "spec:\n  instanceProfileName: imagesync-build\n  instanceTypes: [m7i.large]\n"
        "  terminateInstanceOnFailure: true\n"
        "---\n"
        "apiVersion: imagesync/v1\n"
        "kind: Component\n"
        "metadata:\n  name: hello-from-container\n"
        "spec:\n"
        "  platform: Linux\n"
        "  version: 1.0.0\n"
        "  description: Published by imagesync running in its container image.\n"
        "  document:\n"
        "    schemaVersion: 1.0\n"
        "    phases:\n"
        "      - name: build\n"
        "        steps:\n"
        "          - name: SayHello\n"
        "            action: ExecuteBash\n"
        "            inputs:\n"
        "              commands: [echo hello]\n"
    )
    for path in root.iterdir():
        path.chmod(0o644)
    root.chmod(0o755)
    return root


@contextlib.contextmanager
def host_sandbox(log: Path) -> Iterator[str]:
    """`imagesync sandbox serve` on the host's loopback; its endpoint URL."""
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "imagesync", "sandbox", "serve", "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True,
        )
        try:
            line = read_line(proc, 60)
            match = re.search(r"endpoint=(http://127\.0\.0\.1:\d+)", line)
            assert match, f"unexpected first line {line!r}; stderr: {log.read_text()}"
            yield match.group(1)
        finally:
            stop_process(proc)


def in_container(container: str, *command: str, volumes: tuple[str, ...] = (), check: bool = True
                 ) -> subprocess.CompletedProcess[str]:
    mounts = [arg for volume in volumes for arg in ("-v", volume)]
    return run(["buildah", "run", "--isolation", "chroot", *mounts, container, "--", *command], timeout=300,
               check=check)


@pytest.mark.timeout(900)
def test_the_image_builds_runs_as_its_user_and_reconciles_mounted_manifests_once(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    _tools_or_skip()
    # One build at a time on this machine (two CI jobs may share the cache and buildah's storage),
    # until the working container holds the image.
    with cache_lock():
        ensure_base()
        build_image()
        prune_stale_layers()
        size = run(["buildah", "images", "--format", "{{.Size}}", IMAGE]).stdout.strip()
        config = json.loads(run(["buildah", "inspect", "--type", "image", IMAGE]).stdout)["OCIv1"]["config"]
        container = run(["buildah", "from", IMAGE]).stdout.strip()
    try:
        check_image(container, config, size, tmp_path, record_property)
    finally:
        run(["buildah", "rm", container], check=False)


def check_image(
    container: str, config: dict[str, Any], size: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    record_property("container_image", f"{IMAGE} on {BASE}: {size}")
    print(f"container image {IMAGE} on {BASE}: {size}")

    assert config["Entrypoint"] == ["imagesync"]
    assert config["Cmd"] == ["--help"]
    assert config["User"] == "10001"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "imagesync"
    assert labels["org.opencontainers.image.description"] == PYPROJECT["project"]["description"]
    assert labels["org.opencontainers.image.licenses"] == LICENSE
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.source"].startswith("https://")

    version = in_container(container, "imagesync", "--version")
    assert version.stdout.strip() == f"imagesync {VERSION}"

    who = in_container(container, "sh", "-c", 'id -u; id -un; echo "$HOME"; touch "$HOME/.cache/probe" && echo ok')
    assert who.stdout.split() == ["10001", "imagesync", "/home/imagesync", "ok"]

    # Nothing to build with, from the user's PATH or on disk: no compiler, no pip, no wheels left.
    found = in_container(container, "sh", "-c", "command -v gcc cc c++ g++ clang make pip pip3", check=False)
    assert found.stdout.strip() == "", f"build tools in the image: {found.stdout}"
    rootfs = run(["buildah", "mount", container]).stdout.strip()
    try:
        root = Path(rootfs)
        compilers = sorted(
            str(path.relative_to(root)) for pattern in ("usr/bin/*gcc*", "usr/bin/cc", "usr/bin/*-linux-gnu-cc",
                                                        "usr/bin/c++", "usr/bin/clang*")
            for path in root.glob(pattern)
        )
        assert compilers == []
        site = next(root.glob("opt/imagesync/lib/python3*/site-packages"))
        leftovers = sorted(p.name for p in site.iterdir() if re.match(r"(pip|setuptools|wheel|build)\b", p.name))
        assert leftovers == []
        assert (site / "imagesync").is_dir()
        for absent in ("wheels", "src", "opt/build", "root/.cache/pip"):
            assert not (root / absent).exists(), f"/{absent} is in the image"
    finally:
        run(["buildah", "umount", container], check=False)

    # Chroot isolation shares the host's network namespace: the container reaches the sandbox on
    # the host's loopback, with no port published.
    manifests = write_manifests(tmp_path / "manifests")
    with host_sandbox(tmp_path / "sandbox.log") as endpoint:
        # The loop, once, as a CronJob or a scheduled task runs it: an empty account made to match.
        applied = in_container(
            container, "imagesync", "reconcile", "/manifests", "--sandbox", endpoint, "--once",
            volumes=(f"{manifests}:/manifests:ro",), check=False,
        )
        assert applied.returncode == 0, applied.stderr
        [line] = [x for x in applied.stdout.splitlines() if x.startswith("run=")]
        assert " result=success " in line and " applied=2 " in line, applied.stdout
        again = in_container(
            container, "imagesync", "reconcile", "/manifests", "--sandbox", endpoint, "--once", "--dry-run",
            volumes=(f"{manifests}:/manifests:ro",), check=False,
        )
        assert again.returncode == 0 and " pending=0 " in again.stdout, again.stdout + again.stderr

        client = make_client(endpoint, REGION)
        infrastructure = client.list_infrastructure_configurations()["infrastructureConfigurationSummaryList"]
        assert [item["name"] for item in infrastructure] == ["build-in-container"]
        components = client.list_components(owner="Self")["componentVersionList"]
        assert [(item["name"], item["version"]) for item in components] == [("hello-from-container", "1.0.0")]
