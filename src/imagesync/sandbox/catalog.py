"""The sandbox's Amazon-owned catalog: AWS-managed components and parent images, per region.

Real Image Builder accounts can see resources they do not own: the components and images that
AWS publishes under the account segment ``aws`` (for example
``arn:aws:imagebuilder:us-east-1:aws:component/update-linux/1.0.2/1``). Recipes reference them,
usually through wildcard ARNs such as ``.../component/update-linux/x.x.x`` or
``.../image/amazon-linux-2023-x86/x.x.x``.

This module is that catalog for the sandbox. It is pure data: compact module-level tables and
two functions that expand them for one region.

- :func:`components` returns dicts shaped like botocore's ``Component`` output shape (what
  GetComponent returns).
- :func:`images` returns dicts shaped like botocore's ``Image`` output shape (what GetImage
  returns).

The sandbox backend lists and gets these when the caller asks with ``owner=Amazon``. It also
resolves ``x.x.x``-style wildcard references (in recipe ``componentArn`` and ``parentImage``)
against them. That is why several entries have three or more versions, and why the versions
include cases where numeric and lexical order differ (``1.0.9`` < ``1.0.10``,
``2025.9.18`` < ``2025.10.16``).

Output is deterministic: no randomness and no clock. Dates are fixed per version, and AMI IDs
come from a hash of name, version and region. Results are memoized per region, and every call
returns a deep copy, so callers may mutate what they get.

Where the real service and the botocore model disagree, the catalog follows the service:

- ``Image.version`` is ``"x.y.z/build"`` (as GetImage returns it, e.g. ``"1.0.0/1"`` in the AWS
  CLI examples), although the model gives the member the ``VersionNumber`` pattern ``x.y.z``.
- ``ComponentParameterDetail.type`` is ``"string"`` (the model's doc: "The currently supported
  value is 'string'"). The model's case-sensitive pattern ``^String|Integer|...`` does not match
  it.
- ``tags`` is ``{}`` (as in real responses), although ``TagMap`` has ``min: 1``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from typing import Any

import yaml

from imagesync.sandbox.documents import component_parameters, component_type

ACCOUNT = "aws"
"""ARN account segment of AWS-managed Image Builder resources."""

OWNER = "Amazon"
"""``owner`` value of AWS-managed resources (also the ``Ownership`` filter value).

Components carry it. The ``Image`` shape has no ``owner`` member, so image dicts do not; the
backend adds it when it builds ``ImageVersion``/``ImageSummary`` rows for ListImages.
"""

BUILD_NUMBER = 1
"""Every catalog version has exactly one build."""

_VERSION_MARK = "@VERSION@"

# (semantic version "x.y.z", dateCreated ISO-8601 with milliseconds and Z)
_Version = tuple[str, str]
# (name, platform, supportedOsVersions, description, versions, AWSTOE document template)
_ComponentSpec = tuple[str, str, tuple[str, ...], str, tuple[_Version, ...], str]
# (name, platform, osVersion, AMI description, versions)
_ImageSpec = tuple[str, str, str, str, tuple[_Version, ...]]

_AL = ("Amazon Linux 2023", "Amazon Linux 2")
_AL_UBUNTU = ("Amazon Linux 2023", "Amazon Linux 2", "Ubuntu 22")
_WINDOWS = ("Microsoft Windows Server 2022", "Microsoft Windows Server 2019")

# --- AWSTOE document templates. "@VERSION@" becomes the component's semantic version. --------

_DOC_UPDATE_LINUX = """\
# Document version: @VERSION@
name: update-linux
description: Updates Linux with the latest security updates.
schemaVersion: 1.0

phases:
  - name: build
    steps:
      - name: UpdateOS
        action: UpdateOS
        onFailure: Abort
        maxAttempts: 3

  - name: validate
    steps:
      - name: ValidateNoPendingUpdates
        action: ExecuteBash
        inputs:
          commands:
            - |
              if command -v dnf >/dev/null 2>&1; then
                dnf check-update --security -q && echo "No pending security updates."
              elif command -v yum >/dev/null 2>&1; then
                yum check-update --security -q && echo "No pending security updates."
              else
                apt-get update -q && apt-get -s upgrade | grep -q '^0 upgraded' && echo "No pending updates."
              fi
"""

_DOC_UPDATE_WINDOWS = """\
# Document version: @VERSION@
name: update-windows
description: Updates Microsoft Windows with the latest security updates.
schemaVersion: 1.0

phases:
  - name: build
    steps:
      - name: UpdateWindows
        action: UpdateOS
        onFailure: Abort
        maxAttempts: 3
        timeoutSeconds: 14400

  - name: validate
    steps:
      - name: ValidateNoPendingUpdates
        action: ExecutePowerShell
        inputs:
          commands:
            - |
              $session = New-Object -ComObject Microsoft.Update.Session
              $pending = $session.CreateUpdateSearcher().Search("IsInstalled=0 and Type='Software'").Updates
              if ($pending.Count -gt 0) { throw "$($pending.Count) updates are still pending." }
              Write-Host 'No pending updates.'
"""

_DOC_CLOUDWATCH_AGENT_LINUX = """\
# Document version: @VERSION@
name: amazon-cloudwatch-agent-linux
description: Installs the latest version of the Amazon CloudWatch agent.
schemaVersion: 1.0

phases:
  - name: build
    steps:
      - name: InstallCloudWatchAgent
        action: ExecuteBash
        onFailure: Abort
        maxAttempts: 3
        inputs:
          commands:
            - |
              set -euo pipefail
              ARCH=$(uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')
              BASE="https://amazoncloudwatch-agent.s3.amazonaws.com"
              if command -v rpm >/dev/null 2>&1 && ! command -v dpkg >/dev/null 2>&1; then
                rpm -U "${BASE}/amazon_linux/${ARCH}/latest/amazon-cloudwatch-agent.rpm"
              else
                curl -fsSL -o /tmp/cwagent.deb "${BASE}/ubuntu/${ARCH}/latest/amazon-cloudwatch-agent.deb"
                dpkg -i -E /tmp/cwagent.deb
                rm -f /tmp/cwagent.deb
              fi

  - name: validate
    steps:
      - name: ValidateCloudWatchAgent
        action: ExecuteBash
        inputs:
          commands:
            - test -x /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
            - /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a status
"""

_DOC_AWS_CLI_V2_LINUX = """\
# Document version: @VERSION@
name: aws-cli-version-2-linux
description: Installs the latest version of the AWS CLI version 2.
schemaVersion: 1.0

phases:
  - name: build
    steps:
      - name: CreateInstallFolder
        action: CreateFolder
        inputs:
          - path: /tmp/awscliv2
            overwrite: true

      - name: InstallAwsCli
        action: ExecuteBash
        onFailure: Abort
        maxAttempts: 3
        inputs:
          commands:
            - |
              set -euo pipefail
              cd /tmp/awscliv2
              curl -fsSL -o awscliv2.zip "https://awscli.amazonaws.com/awscli-exe-linux-$(uname -m).zip"
              unzip -q -o awscliv2.zip
              ./aws/install --update --bin-dir /usr/bin --install-dir /usr/local/aws-cli

      - name: Cleanup
        action: DeleteFolder
        inputs:
          - path: /tmp/awscliv2
            force: true

  - name: validate
    steps:
      - name: ValidateAwsCli
        action: ExecuteBash
        inputs:
          commands:
            - aws --version 2>&1 | grep -q '^aws-cli/2\\.'
"""

_DOC_STIG_BUILD_LINUX_HIGH = """\
# Document version: @VERSION@
name: stig-build-linux-high
description: Applies the high, medium, and low severity STIG settings to Linux instances.
schemaVersion: 1.0

parameters:
  - InstallPackages:
      type: string
      default: 'No'
      description: Install the packages that some STIG settings require ('Yes' or 'No').
  - SetDoDConsentBanner:
      type: string
      default: 'No'
      description: Show the DoD consent banner before login ('Yes' or 'No').

phases:
  - name: build
    steps:
      - name: ApplyStigSettings
        action: ExecuteBash
        onFailure: Abort
        timeoutSeconds: 3600
        inputs:
          commands:
            - |
              set -euo pipefail
              INSTALL_PACKAGES='{{ InstallPackages }}'
              SET_BANNER='{{ SetDoDConsentBanner }}'
              if [ "$INSTALL_PACKAGES" = "Yes" ]; then
                (command -v dnf >/dev/null && dnf install -y aide audit) || yum install -y aide audit
              fi
              sed -i 's/^#\\?PermitEmptyPasswords.*/PermitEmptyPasswords no/' /etc/ssh/sshd_config
              sed -i 's/^#\\?PermitRootLogin.*/PermitRootLogin no/' /etc/ssh/sshd_config
              echo 'ENCRYPT_METHOD SHA512' >> /etc/login.defs
              if [ "$SET_BANNER" = "Yes" ]; then
                echo 'You are accessing a U.S. Government (USG) Information System (IS).' > /etc/issue
              fi

      - name: RebootAfterStig
        action: Reboot
        onFailure: Abort
        maxAttempts: 2
        inputs:
          delaySeconds: 60

  - name: validate
    steps:
      - name: ValidateStigSettings
        action: ExecuteBash
        inputs:
          commands:
            - grep -q '^PermitEmptyPasswords no' /etc/ssh/sshd_config
            - grep -q '^PermitRootLogin no' /etc/ssh/sshd_config
"""

_DOC_INSPECTOR_TEST_LINUX = """\
# Document version: @VERSION@
name: inspector-test-linux
description: Runs an Amazon Inspector assessment of the instance and fails on high severity findings.
schemaVersion: 1.0

phases:
  - name: test
    steps:
      - name: InstallInspectorAgent
        action: ExecuteBash
        maxAttempts: 3
        inputs:
          commands:
            - curl -fsSL -o /tmp/inspector-install https://inspector-agent.amazonaws.com/linux/latest/install
            - bash /tmp/inspector-install

      - name: RunAssessment
        action: ExecuteBash
        timeoutSeconds: 3600
        inputs:
          commands:
            - |
              set -euo pipefail
              /opt/aws/awsagent/bin/awsagent status
              echo "Inspector assessment finished without high severity findings."
"""

_DOC_SIMPLE_BOOT_TEST_LINUX = """\
# Document version: @VERSION@
name: simple-boot-test-linux
description: Verifies that the instance booted and that system services are running.
schemaVersion: 1.0

phases:
  - name: test
    steps:
      - name: VerifyBoot
        action: ExecuteBash
        inputs:
          commands:
            - |
              state=$(systemctl is-system-running --wait || true)
              echo "System state: $state"
              [ "$state" = "running" ] || [ "$state" = "degraded" ]
"""

_DOC_REBOOT_TEST_LINUX = """\
# Document version: @VERSION@
name: reboot-test-linux
description: Verifies that the instance reboots successfully.
schemaVersion: 1.0

phases:
  - name: test
    steps:
      - name: RecordBootId
        action: ExecuteBash
        inputs:
          commands:
            - cat /proc/sys/kernel/random/boot_id > /var/tmp/imagebuilder-boot-id

      - name: RebootInstance
        action: Reboot
        onFailure: Abort
        maxAttempts: 2
        inputs:
          delaySeconds: 30

      - name: VerifyReboot
        action: ExecuteBash
        inputs:
          commands:
            - |
              if [ "$(cat /proc/sys/kernel/random/boot_id)" = "$(cat /var/tmp/imagebuilder-boot-id)" ]; then
                echo "The instance did not reboot." >&2
                exit 1
              fi
              rm -f /var/tmp/imagebuilder-boot-id
"""

_DOC_PYTHON_3_LINUX = """\
# Document version: @VERSION@
name: python-3-linux
description: Installs the Python 3 package from the distribution's repositories.
schemaVersion: 1.0

phases:
  - name: build
    steps:
      - name: InstallPython3
        action: ExecuteBash
        onFailure: Abort
        maxAttempts: 3
        inputs:
          commands:
            - |
              if command -v dnf >/dev/null 2>&1; then
                dnf install -y python3 python3-pip
              elif command -v yum >/dev/null 2>&1; then
                yum install -y python3 python3-pip
              else
                apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-pip
              fi

  - name: validate
    steps:
      - name: ValidatePython3
        action: ExecuteBash
        inputs:
          commands:
            - python3 --version
            - python3 -c 'import ssl, sqlite3'
"""

_DOC_DOCKER_CE_LINUX = """\
# Document version: @VERSION@
name: docker-ce-linux
description: Installs Docker Community Edition and lets ec2-user run docker without sudo.
schemaVersion: 1.0

phases:
  - name: build
    steps:
      - name: InstallDocker
        action: ExecuteBash
        onFailure: Abort
        maxAttempts: 3
        inputs:
          commands:
            - |
              if command -v dnf >/dev/null 2>&1; then
                dnf install -y docker
              elif command -v yum >/dev/null 2>&1; then
                amazon-linux-extras install -y docker || yum install -y docker
              else
                apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io
              fi
            - systemctl enable docker

      - name: AddUserToDockerGroup
        action: ExecuteBash
        inputs:
          commands:
            - id ec2-user >/dev/null 2>&1 && usermod -aG docker ec2-user || true

  - name: validate
    steps:
      - name: ValidateDocker
        action: ExecuteBash
        inputs:
          commands:
            - systemctl start docker
            - docker info
"""

_DOC_POWERSHELL_WINDOWS = """\
# Document version: @VERSION@
name: powershell-windows
description: Installs PowerShell 7 on Windows.
schemaVersion: 1.0

phases:
  - name: build
    steps:
      - name: DownloadPowerShell
        action: WebDownload
        maxAttempts: 3
        inputs:
          - source: https://github.com/PowerShell/PowerShell/releases/download/v7.4.6/PowerShell-7.4.6-win-x64.msi
            destination: C:\\Windows\\Temp\\PowerShell-7-win-x64.msi
            overwrite: true

      - name: InstallPowerShell
        action: InstallMSI
        onFailure: Abort
        inputs:
          path: C:\\Windows\\Temp\\PowerShell-7-win-x64.msi
          reboot: Skip
          properties:
            ADD_PATH: '1'
            REGISTER_MANIFEST: '1'

      - name: Cleanup
        action: DeleteFile
        inputs:
          - path: C:\\Windows\\Temp\\PowerShell-7-win-x64.msi

  - name: validate
    steps:
      - name: ValidatePowerShell
        action: ExecutePowerShell
        inputs:
          commands:
            - |
              $pwsh = Join-Path $env:ProgramFiles 'PowerShell\\7\\pwsh.exe'
              if (-not (Test-Path $pwsh)) { throw 'pwsh.exe was not installed.' }
              & $pwsh -NoProfile -Command '$PSVersionTable.PSVersion.ToString()'
"""

# --- Components ------------------------------------------------------------------------------

_COMPONENTS: tuple[_ComponentSpec, ...] = (
    (
        "update-linux",
        "Linux",
        _AL_UBUNTU + ("Red Hat Enterprise Linux 9",),
        "Updates Linux with the latest security updates.",
        (
            ("1.0.0", "2024-02-14T18:21:37.412Z"),
            ("1.0.1", "2024-09-05T16:04:12.088Z"),
            ("1.0.2", "2025-06-19T20:47:53.731Z"),
        ),
        _DOC_UPDATE_LINUX,
    ),
    (
        "update-windows",
        "Windows",
        _WINDOWS,
        "Updates Microsoft Windows with the latest security updates.",
        (
            ("1.0.0", "2024-01-23T22:10:05.547Z"),
            ("1.0.1", "2024-11-07T17:33:48.209Z"),
            ("1.0.2", "2025-08-12T19:58:26.964Z"),
        ),
        _DOC_UPDATE_WINDOWS,
    ),
    (
        "amazon-cloudwatch-agent-linux",
        "Linux",
        _AL_UBUNTU,
        "Installs the latest version of the Amazon CloudWatch agent. This component installs "
        "only the agent; you must take additional steps to configure and use it.",
        (
            ("1.0.0", "2024-03-28T15:42:19.630Z"),
            ("1.0.1", "2024-12-10T21:16:03.175Z"),
            ("1.1.0", "2025-09-23T18:05:44.502Z"),
        ),
        _DOC_CLOUDWATCH_AGENT_LINUX,
    ),
    (
        "aws-cli-version-2-linux",
        "Linux",
        _AL_UBUNTU,
        "Installs the latest version of the AWS CLI version 2, and creates the symlink "
        "/usr/bin/aws that points to the installed application.",
        (
            ("1.0.0", "2024-04-16T19:27:51.304Z"),
            ("1.0.9", "2025-03-04T17:12:36.819Z"),
            ("1.0.10", "2025-10-28T16:39:02.447Z"),
        ),
        _DOC_AWS_CLI_V2_LINUX,
    ),
    (
        "stig-build-linux-high",
        "Linux",
        _AL + ("Red Hat Enterprise Linux 8", "Red Hat Enterprise Linux 9"),
        "Applies the high, medium, and low severity STIG settings to Amazon Linux and Red Hat "
        "Enterprise Linux instances.",
        (
            ("2024.1.0", "2024-03-05T20:14:27.951Z"),
            ("2024.4.0", "2024-12-17T18:49:10.336Z"),
            ("2025.2.0", "2025-07-08T19:31:58.720Z"),
        ),
        _DOC_STIG_BUILD_LINUX_HIGH,
    ),
    (
        "inspector-test-linux",
        "Linux",
        _AL_UBUNTU,
        "Runs an Amazon Inspector assessment of the instance and fails the test on high severity findings.",
        (
            ("1.0.0", "2024-05-09T16:58:24.444Z"),
            ("1.0.1", "2025-02-20T18:26:15.093Z"),
        ),
        _DOC_INSPECTOR_TEST_LINUX,
    ),
    (
        "simple-boot-test-linux",
        "Linux",
        _AL_UBUNTU,
        "Verifies that the instance boots and that its system services are running.",
        (
            ("1.0.0", "2024-06-11T17:03:49.218Z"),
            ("1.1.0", "2025-05-13T15:44:31.662Z"),
        ),
        _DOC_SIMPLE_BOOT_TEST_LINUX,
    ),
    (
        "reboot-test-linux",
        "Linux",
        _AL_UBUNTU,
        "Verifies that the instance can reboot successfully.",
        (
            ("1.0.0", "2024-06-11T17:05:12.870Z"),
            ("1.0.1", "2025-04-29T19:18:57.305Z"),
        ),
        _DOC_REBOOT_TEST_LINUX,
    ),
    (
        "python-3-linux",
        "Linux",
        _AL_UBUNTU,
        "Installs the Python 3 package from the distribution's repositories.",
        (
            ("1.0.0", "2024-07-02T20:36:40.159Z"),
            ("1.1.0", "2025-01-14T16:22:08.984Z"),
            ("2.0.0", "2026-01-27T18:11:45.537Z"),
        ),
        _DOC_PYTHON_3_LINUX,
    ),
    (
        "docker-ce-linux",
        "Linux",
        _AL_UBUNTU,
        "Installs Docker Community Edition and enables the ec2-user user to manage docker without using sudo.",
        (
            ("1.0.0", "2024-08-20T21:49:33.726Z"),
            ("1.0.1", "2025-11-04T17:57:19.411Z"),
        ),
        _DOC_DOCKER_CE_LINUX,
    ),
    (
        "powershell-windows",
        "Windows",
        _WINDOWS,
        "Installs PowerShell 7 on Windows.",
        (
            ("1.0.0", "2024-10-01T18:40:26.093Z"),
            ("1.1.0", "2025-12-09T19:02:51.648Z"),
        ),
        _DOC_POWERSHELL_WINDOWS,
    ),
)

# --- Parent images ---------------------------------------------------------------------------

_IMAGES: tuple[_ImageSpec, ...] = (
    (
        "amazon-linux-2023-x86",
        "Linux",
        "Amazon Linux 2023",
        "Amazon Linux 2023 AMI (x86_64) managed by EC2 Image Builder",
        (
            ("2025.9.18", "2025-09-18T06:12:44.318Z"),
            ("2025.10.16", "2025-10-16T05:58:31.902Z"),
            ("2025.11.20", "2025-11-20T06:07:19.455Z"),
            ("2026.1.15", "2026-01-15T06:21:08.763Z"),
        ),
    ),
    (
        "amazon-linux-2023-arm64",
        "Linux",
        "Amazon Linux 2023",
        "Amazon Linux 2023 AMI (arm64) managed by EC2 Image Builder",
        (
            ("2025.9.18", "2025-09-18T06:15:02.641Z"),
            ("2025.10.16", "2025-10-16T06:01:57.128Z"),
            ("2025.11.20", "2025-11-20T06:10:43.876Z"),
        ),
    ),
    (
        "amazon-linux-2-x86",
        "Linux",
        "Amazon Linux 2",
        "Amazon Linux 2 AMI (x86_64) managed by EC2 Image Builder",
        (
            ("2025.9.11", "2025-09-11T07:03:25.540Z"),
            ("2025.10.9", "2025-10-09T06:48:12.367Z"),
            ("2025.11.13", "2025-11-13T07:15:39.091Z"),
        ),
    ),
    (
        "ubuntu-server-22-lts-x86",
        "Linux",
        "Ubuntu 22",
        "Ubuntu Server 22.04 LTS AMI (x86_64) managed by EC2 Image Builder",
        (
            ("2025.8.28", "2025-08-28T09:26:50.214Z"),
            ("2025.10.2", "2025-10-02T09:11:37.689Z"),
            ("2025.11.6", "2025-11-06T09:34:05.902Z"),
        ),
    ),
    (
        "windows-server-2022-english-full-base-x86",
        "Windows",
        "Microsoft Windows Server 2022",
        "Microsoft Windows Server 2022 Full Locale English AMI managed by EC2 Image Builder",
        (
            ("2025.9.10", "2025-09-10T12:40:17.533Z"),
            ("2025.10.15", "2025-10-15T12:52:46.120Z"),
            ("2025.11.12", "2025-11-12T12:37:58.804Z"),
        ),
    ),
)


# --- Expansion -------------------------------------------------------------------------------


def _partition(region: str) -> str:
    """ARN partition of a region (``aws``, ``aws-cn`` or ``aws-us-gov``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _arn(region: str, resource_type: str, name: str, version: str) -> str:
    return f"arn:{_partition(region)}:imagebuilder:{region}:{ACCOUNT}:{resource_type}/{name}/{version}/{BUILD_NUMBER}"


def _ami_id(name: str, version: str, region: str) -> str:
    digest = hashlib.sha256(f"{name}|{version}|{region}".encode()).hexdigest()
    return f"ami-{digest[:17]}"


@functools.cache
def _components(region: str) -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = []
    for name, platform, os_versions, description, versions, template in _COMPONENTS:
        for version, date_created in versions:
            data = template.replace(_VERSION_MARK, version)
            document = yaml.safe_load(data)
            component: dict[str, Any] = {
                "arn": _arn(region, "component", name, version),
                "name": name,
                "version": version,
                "description": description,
                "type": component_type(document),
                "platform": platform,
                "supportedOsVersions": list(os_versions),
                "state": {"status": "ACTIVE"},
            }
            parameters = component_parameters(document)
            if parameters:
                component["parameters"] = parameters
            component.update(
                {
                    "owner": OWNER,
                    "data": data,
                    "encrypted": True,
                    "dateCreated": date_created,
                    "tags": {},
                }
            )
            out.append(component)
    return tuple(out)


@functools.cache
def _images(region: str) -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = []
    for name, platform, os_version, ami_description, versions in _IMAGES:
        for version, date_created in versions:
            out.append(
                {
                    "arn": _arn(region, "image", name, version),
                    "type": "AMI",
                    "name": name,
                    "version": f"{version}/{BUILD_NUMBER}",
                    "platform": platform,
                    "osVersion": os_version,
                    "state": {"status": "AVAILABLE"},
                    "dateCreated": date_created,
                    "outputResources": {
                        "amis": [
                            {
                                "region": region,
                                "image": _ami_id(name, version, region),
                                "name": f"{name} {version}",
                                "description": ami_description,
                            }
                        ]
                    },
                    "tags": {},
                    "buildType": "SCHEDULED",
                    "imageSource": "AMAZON_MANAGED",
                }
            )
    return tuple(out)


def components(region: str) -> list[dict[str, Any]]:
    """Every AWS-managed component build version in ``region``, as ``Component``-shaped dicts.

    One entry per (name, semantic version), each with build ``/1``, in table order (by name
    as listed, versions ascending). The result is a fresh deep copy.
    """
    return copy.deepcopy(list(_components(region)))


def images(region: str) -> list[dict[str, Any]]:
    """Every AWS-managed parent image build version in ``region``, as ``Image``-shaped dicts.

    One entry per (name, version), each with build ``/1``, in table order (versions
    ascending). The result is a fresh deep copy.
    """
    return copy.deepcopy(list(_images(region)))
