"""Tests for the offline AWSTOE component and Image Builder workflow document checks."""

from __future__ import annotations

from collections.abc import Callable
from textwrap import dedent
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagesync.errors import Location
from imagesync.manifest.awstoe import (
    INLINE_LIMIT,
    check_component_document,
    check_inline_size,
    check_workflow_document,
    component_type,
    parameter_names,
    parameter_types,
    step_index,
)
from imagesync.manifest.problems import Problems
from imagesync.manifest.yamlloc import Located, load_text

Checker = Callable[[Located, Problems], None]


def run(text: str, checker: Checker = check_component_document) -> list[tuple[int, int, str]]:
    """Load `text` as doc.yml, check it, and return (line, column, message) for every problem."""
    problems = Problems()
    docs = load_text(dedent(text), "doc.yml", problems)
    assert not problems.items, f"the test document itself is broken: {problems.items}"
    assert len(docs) == 1
    checker(docs[0], problems)
    return [(p.location.line, p.location.column, p.message) for p in problems.items]


# --- valid documents -----------------------------------------------------------------------------

LINUX_HARDENING = """\
name: linux-hardening
description: Harden Amazon Linux 2023 and check the result.
schemaVersion: 1.0
parameters:
  - SshPort:
      type: string
      default: "22"
      description: Port sshd listens on.
  - AuditRules:
      type: string
constants:
  - ConfigDir:
      type: string
      value: /etc/imagesync
phases:
  - name: build
    steps:
      - name: UpdateSystem
        action: UpdateOS
      - name: CreateConfigDir
        action: CreateFolder
        inputs:
          - path: '{{ ConfigDir }}'
            permissions: "0755"
      - name: HardenSsh
        action: ExecuteBash
        onFailure: Abort
        timeoutSeconds: 600
        maxAttempts: 3
        inputs:
          commands:
            - sed -i 's/^#\\?Port .*/Port {{ SshPort }}/' /etc/ssh/sshd_config
            - |
              echo "{{ AuditRules }}" > "{{ ConfigDir }}/audit.rules"
              docker inspect -f '{{.State.Running}}' agent || true
              echo "${HOME} {{{ not-a-reference }}}"
            - systemctl restart sshd
  - name: validate
    steps:
      - name: CheckSsh
        action: ExecuteBash
        onFailure: Continue
        timeoutSeconds: -1
        inputs:
          commands:
            - grep -q "Port {{ SshPort }}" /etc/ssh/sshd_config
"""

WINDOWS = """\
name: windows-baseline
schemaVersion: "1.0"
phases:
  - name: build
    steps:
      - name: DownloadAgent
        action: S3Download
        inputs:
          - source: s3://my-bucket/agent.msi
            destination: C:\\Temp\\agent.msi
            expectedBucketOwner: "123456789012"
      - name: InstallAgent
        action: InstallMSI
        inputs:
          path: C:\\Temp\\agent.msi
          reboot: Allow
      - name: EnableTls
        action: SetRegistry
        inputs:
          - path: HKLM:\\SOFTWARE\\Policies\\Tls
            name: Enabled
            value: 1
            type: DWORD
      - name: Configure
        action: ExecutePowerShell
        inputs:
          commands:
            - Set-ExecutionPolicy RemoteSigned -Force
            - Write-Host "$env:COMPUTERNAME"
      - name: RunScript
        action: ExecutePowerShell
        inputs:
          file: C:\\Temp\\setup.ps1
      - name: RebootNow
        action: Reboot
        onFailure: Abort
      - name: RebootLater
        action: Reboot
        inputs:
          delaySeconds: 60
"""

TEST_ONLY = """\
name: nginx-smoke-test
schemaVersion: 1.0
phases:
  - name: test
    steps:
      - name: NginxAnswers
        action: ExecuteBash
        inputs:
          commands:
            - curl -fsS http://localhost/ >/dev/null
"""

LOOPS = """\
schemaVersion: 1.0
parameters:
  - Packages:
      type: string
      default: "git,curl,jq"
phases:
  - name: build
    steps:
      - name: CountDown
        action: ExecuteBash
        loop:
          for:
            start: 10
            end: 0
            updateBy: -2
        inputs:
          commands:
            - echo "{{ loop.index }} -> {{ loop.value }}"
      - name: Users
        action: ExecuteBash
        loop:
          name: users
          forEach:
            - alice
            - bob
        inputs:
          commands:
            - useradd "{{ users.value }}" && echo "{{ users.index }}"
      - name: InstallPackages
        action: ExecuteBash
        loop:
          name: pkgs
          forEach:
            list: '{{ Packages }}'
            delimiter: ","
        inputs:
          commands:
            - dnf install -y "{{ pkgs.value }}"
      - name: Once
        action: ExecuteBash
        loop:
          for: {start: 3, end: 3, updateBy: 1}
        inputs:
          commands: ['echo "{{ loop.value }}"']
"""

CHAINING = """\
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: RecipeDestination
        action: ExecuteBash
        inputs:
          commands:
            - echo /opt/recipes
      - name: Fetch
        action: S3Download
        inputs:
          - source: s3://bucket/recipe.tar.gz
            destination: '{{ build.RecipeDestination.outputs.stdout }}/recipe.tar.gz'
      - name: Unpack
        action: ExecuteBash
        inputs:
          commands:
            - tar -xzf "{{ build.Fetch.inputs[0].destination }}"
  - name: validate
    steps:
      - name: Check
        action: ExecuteBash
        inputs:
          commands:
            - test -d "{{ build.RecipeDestination.outputs.stdout }}"
  - name: test
    steps:
      - name: Probe
        action: ExecuteBash
        inputs:
          commands: [echo probe]
      - name: Report
        action: ExecuteBash
        inputs:
          commands: ['echo "{{ test.Probe.outputs.stdout }}"']
"""

CUSTOM_PHASE_AND_IF = """\
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: MaybeInstall
        action: ExecuteBash
        if:
          binaryExists: apt-get
        inputs:
          commands: [apt-get install -y jq]
      - name: Check
        action: Assert
        inputs:
          stringEquals: a
          value: a
  - name: cleanup
    steps:
      - name: RemoveTemp
        action: DeleteFolder
        inputs:
          - path: /tmp/build
            force: true
"""

BUILD_WORKFLOW = """\
name: build-image-custom
description: Build an image, pausing for approval at the end when asked.
schemaVersion: 1.0
parameters:
  - name: waitForActionAtEnd
    type: boolean
    default: true
    description: Wait for an external action at the end of the workflow.
  - name: extraTags
    type: stringList
    default: [a, b]
steps:
  - name: LaunchBuildInstance
    action: LaunchInstance
    onFailure: Abort
    timeoutSeconds: 3600
    inputs:
      waitFor: ssmAgent
  - name: ApplyBuildComponents
    action: ExecuteComponents
    onFailure: Abort
    inputs:
      instanceId.$: "$.stepOutputs.LaunchBuildInstance.instanceId"
  - name: CreateOutputAMI
    action: CreateImage
    onFailure: Abort
    rollbackEnabled: true
    inputs:
      instanceId.$: "$.stepOutputs.LaunchBuildInstance.instanceId"
  - name: WaitForApproval
    action: WaitForAction
    description: Pause until someone approves.
    if:
      booleanEquals: true
      value: "$.parameters.waitForActionAtEnd"
  - name: TerminateBuildInstance
    action: TerminateInstance
    onFailure: Continue
    inputs:
      instanceId.$: "$.stepOutputs.LaunchBuildInstance.instanceId"
outputs:
  - name: ImageId
    value: "$.stepOutputs.CreateOutputAMI.imageId"
"""

TEST_WORKFLOW = """\
schemaVersion: "1.0"
steps:
  - name: LaunchTestInstance
    action: LaunchInstance
    inputs:
      imageIdOverride.$: "$.imageBuilder.sourceImageId"
  - name: RunTests
    action: RunCommand
    inputs:
      documentName: AWS-RunShellScript
      instanceId.$: "$.stepOutputs.LaunchTestInstance.instanceId"
"""


@pytest.mark.parametrize(
    ("text", "checker"),
    [
        pytest.param(LINUX_HARDENING, check_component_document, id="linux-hardening"),
        pytest.param(WINDOWS, check_component_document, id="windows-powershell-reboot"),
        pytest.param(TEST_ONLY, check_component_document, id="test-only"),
        pytest.param(LOOPS, check_component_document, id="loops"),
        pytest.param(CHAINING, check_component_document, id="chaining"),
        pytest.param(CUSTOM_PHASE_AND_IF, check_component_document, id="custom-phase-if-assert"),
        pytest.param(BUILD_WORKFLOW, check_workflow_document, id="workflow-build"),
        pytest.param(TEST_WORKFLOW, check_workflow_document, id="workflow-test"),
    ],
)
def test_valid_documents_have_no_problems(text: str, checker: Checker) -> None:
    assert run(text, checker) == []


# --- invalid component documents -----------------------------------------------------------------

# Each case: a document with exactly one mistake, where it is (line, column), and part of the message.
COMPONENT_CASES = [
    pytest.param(
        """\
        - just
        - a list
        """,
        1, 1, "a component document must be a map",
        id="not-a-map",
    ),
    pytest.param(
        """\
        name: x
        phases:
          - name: build
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        1, 1, "missing 'schemaVersion' (expected 1.0)",
        id="missing-schema-version",
    ),
    pytest.param(
        """\
        name: x
        schemaVersion: 2.0
        phases:
          - name: build
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        2, 1, "schemaVersion must be 1.0, not the number 2.0",
        id="schema-version-2",
    ),
    pytest.param(
        """\
        name: 42
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        1, 1, "the 'name' of the document must be a string, not the number 42",
        id="name-not-string",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        descripton: typo
        phases:
          - name: build
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        2, 1, "unknown top-level key 'descripton'; did you mean 'description'?",
        id="unknown-top-level-key",
    ),
    pytest.param(
        """\
        name: x
        schemaVersion: 1.0
        """,
        1, 1, "missing 'phases'",
        id="missing-phases",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases: []
        """,
        2, 1, "the 'phases' must be a non-empty list of phases, not a list of 0 items",
        id="empty-phases",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        parameters:
          Port: {type: string}
        phases:
          - name: build
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        2, 1, "the 'parameters' must be a list of single-key maps",
        id="parameters-not-list",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        parameters:
          - Port: {type: string}
            Host: {type: string}
        phases:
          - name: build
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        3, 5, "must be a map with exactly one key, the parameter name",
        id="parameter-two-keys",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        parameters:
          - ab: {type: string}
        phases:
          - name: build
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        3, 5, "parameter name 'ab' must be 3 to 128 letters",
        id="parameter-name-short",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        constants:
          - my.dir: {type: string, value: /tmp}
        phases:
          - name: build
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        3, 5, "constant name 'my.dir' must be 3 to 128 letters, digits, '_' or '-'",
        id="constant-name-chars",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        parameters:
          - Region: {type: string}
        constants:
          - Region: {type: string, value: eu-west-1}
        phases:
          - name: build
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        5, 5, "duplicate name 'Region': already defined as a parameter at line 3, column 5",
        id="duplicate-parameter-constant",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        parameters:
          - Port:
              default: "22"
        phases:
          - name: build
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        3, 5, "parameter 'Port' is missing 'type'",
        id="parameter-missing-type",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        parameters:
          - Port:
              type: integer
        phases:
          - name: build
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        4, 7, "parameter 'Port' has type 'integer'; the only supported type is 'string'",
        id="parameter-type-integer",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        constants:
          - Version:
              type: string
        phases:
          - name: build
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        3, 5, "constant 'Version' is missing 'value'",
        id="constant-missing-value",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: cleanup
            steps:
              - {name: Hello, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        2, 1, "no build, validate or test phase (found 'cleanup')",
        id="no-standard-phase",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - {name: One, action: ExecuteBash, inputs: {commands: [echo]}}
          - name: build
            steps:
              - {name: Two, action: ExecuteBash, inputs: {commands: [echo]}}
        """,
        6, 5, "duplicate phase name 'build' (first defined at line 3, column 5)",
        id="duplicate-phase",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps: []
        """,
        4, 5, "the 'steps' must be a non-empty list of steps",
        id="empty-steps",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - action: ExecuteBash
                inputs:
                  commands: [echo]
        """,
        5, 9, "the step is missing 'name'",
        id="step-missing-name",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Say Hello
                action: ExecuteBash
                inputs:
                  commands: [echo]
        """,
        5, 9, "step name must be letters, digits, '_' or '-', not 'Say Hello'",
        id="step-name-space",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                inputs: {commands: [echo one]}
              - name: Hello
                action: ExecuteBash
                inputs: {commands: [echo two]}
        """,
        8, 9, "duplicate step name 'Hello' in this phase (first defined at line 5, column 9)",
        id="duplicate-step",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                inputs: {commands: [echo]}
        """,
        5, 9, "step 'Hello' is missing 'action'",
        id="missing-action",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: executebash
                inputs: {commands: [echo]}
        """,
        6, 9, "unknown action 'executebash'; did you mean 'ExecuteBash'?",
        id="action-wrong-case",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: RunShell
                inputs: {commands: [echo]}
        """,
        6, 9, "unknown action 'RunShell' (expected one of 'AppendFile', 'Assert'",
        id="action-unknown",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
        """,
        5, 9, "step 'Hello' has no 'inputs'; action ExecuteBash requires them",
        id="missing-inputs",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                inputs:
                  - commands: [echo]
        """,
        7, 9, "the inputs of action ExecuteBash must be a map of input names to values, not a list of 1 item",
        id="map-module-given-list",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: S3Download
                inputs:
                  source: s3://bucket/key
                  destination: /tmp/key
        """,
        7, 9, "the inputs of action S3Download must be a list of maps, one per operation",
        id="list-module-given-map",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: S3Download
                inputs:
                  - source: s3://bucket/a
                    destination: /tmp/a
                  - source: s3://bucket/b
        """,
        10, 13, "missing required input 'destination' for action S3Download",
        id="s3download-missing-destination",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                inputs:
                  script: echo
        """,
        7, 9, "missing required input 'commands' for action ExecuteBash",
        id="executebash-commands-missing",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Configure
                action: ExecutePowerShell
                inputs:
                  commands: [Write-Host hi]
                  file: C:\\setup.ps1
        """,
        7, 9, "action ExecutePowerShell takes either 'commands' or 'file', not both",
        id="powershell-both",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Configure
                action: ExecutePowerShell
                inputs:
                  script: Write-Host hi
        """,
        7, 9, "action ExecutePowerShell needs 'commands' (a list of commands) or 'file'",
        id="powershell-neither",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                inputs:
                  commands:
                    - echo hi
                    - echo: this has a colon
        """,
        10, 15, "this command was read as a map, not a string",
        id="command-read-as-map",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Tune
                action: SetRegistry
                inputs:
                  - path: HKLM:\\SOFTWARE\\X
                    name: Enabled
                    value: 1
                    type: DWORD32
        """,
        11, 13, "input 'type' of action SetRegistry must be 'BINARY', 'DWORD'",
        id="setregistry-bad-type",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                onFailure: abort
                inputs: {commands: [echo]}
        """,
        7, 9, "onFailure must be 'Abort', 'Continue' or 'Ignore', not 'abort'; did you mean 'Abort'?",
        id="onfailure-bad",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                timeoutSeconds: 0
                inputs: {commands: [echo]}
        """,
        7, 9, "timeoutSeconds must be a positive whole number of seconds or -1 (no limit), not the number 0",
        id="timeout-zero",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                timeoutSeconds: "60"
                inputs: {commands: [echo]}
        """,
        7, 9, "timeoutSeconds must be a positive whole number of seconds or -1 (no limit), not '60'",
        id="timeout-string",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                maxAttempts: 0
                inputs: {commands: [echo]}
        """,
        7, 9, "maxAttempts must be a whole number of at least 1, not the number 0",
        id="max-attempts-zero",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                onfailure: Abort
                inputs: {commands: [echo]}
        """,
        7, 9, "unknown step key 'onfailure'; did you mean 'onFailure'?",
        id="unknown-step-key",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                loop:
                  for: {start: 1, end: 3, updateBy: 1}
                  forEach: [a, b]
                inputs: {commands: [echo]}
        """,
        7, 9, "the loop has both 'for' and 'forEach'; use exactly one",
        id="loop-both",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                loop:
                  name: only-a-name
                inputs: {commands: [echo]}
        """,
        7, 9, "the loop needs 'for' (a range of numbers) or 'forEach' (a list of strings)",
        id="loop-neither",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                loop:
                  for:
                    start: 1
                    end: 5
                    updateBy: 0
                inputs: {commands: [echo]}
        """,
        11, 13, "the 'updateBy' of a 'for' loop must not be 0",
        id="loop-update-by-zero",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                loop:
                  for:
                    start: 1
                    end: 10
                    updateBy: -1
                inputs: {commands: [echo]}
        """,
        11, 13, "the loop never ends: updateBy -1 moves start 1 away from end 10",
        id="loop-never-ends",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                loop:
                  for:
                    start: "{{ build.Other.outputs.stdout }}"
                    end: 10
                    updateBy: 1
                inputs: {commands: [echo]}
        """,
        9, 13, "the 'start' of a 'for' loop must be a whole number",
        id="loop-for-chaining",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                loop:
                  forEach:
                    - a
                    - 5
                inputs: {commands: [echo]}
        """,
        10, 15, "forEach values must be strings, not the number 5; quote the value",
        id="loop-foreach-number",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                loop:
                  forEach:
                    list: a;b;c
                inputs: {commands: [echo]}
        """,
        8, 11, "a forEach map needs 'delimiter'",
        id="loop-foreach-map-no-delimiter",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: One
                action: ExecuteBash
                loop: {name: users, forEach: [a]}
                inputs: {commands: [echo]}
              - name: Two
                action: ExecuteBash
                loop: {name: users, forEach: [b]}
                inputs: {commands: [echo]}
        """,
        11, 16, "duplicate loop name 'users' in this phase (first defined at line 7, column 16)",
        id="duplicate-loop-name",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        parameters:
          - Version: {type: string}
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                inputs:
                  commands:
                    - echo "{{ Versoin }}"
        """,
        11, 15, "unknown reference '{{ Versoin }}': not a parameter, constant, loop variable or earlier step output",
        id="reference-unknown",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                inputs:
                  commands: ['echo "{{ loop.index }}"']
        """,
        8, 22, "works only in the inputs of a step that has a 'loop'",
        id="reference-loop-outside-loop",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                loop: {name: outer, forEach: [a]}
                inputs: {commands: [echo]}
              - name: Again
                action: ExecuteBash
                inputs:
                  commands: ['echo "{{ outer.value }}"']
        """,
        12, 22, "unknown reference '{{ outer.value }}'",
        id="reference-other-steps-loop",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: First
                action: ExecuteBash
                inputs:
                  commands: ['cat "{{ build.Second.outputs.stdout }}"']
              - name: Second
                action: ExecuteBash
                inputs: {commands: [echo]}
        """,
        8, 22, "reads step 'Second' of phase 'build', which does not run before this step",
        id="chain-to-later-step",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: First
                action: ExecuteBash
                inputs:
                  commands: ['cat "{{ build.Missing.outputs.stdout }}"']
        """,
        8, 22, "unknown reference '{{ build.Missing.outputs.stdout }}'",
        id="chain-to-missing-step",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: MakeFile
                action: ExecuteBash
                inputs: {commands: [echo /tmp/x]}
          - name: test
            steps:
              - name: CheckFile
                action: ExecuteBash
                inputs:
                  commands:
                    - test -f "{{ build.MakeFile.outputs.stdout }}"
        """,
        14, 15, "across the build->test stage boundary",
        id="chain-across-stages",
    ),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), COMPONENT_CASES)
def test_component_problem(text: str, line: int, column: int, message: str) -> None:
    found = run(text)
    assert len(found) == 1, found
    ((got_line, got_column, got_message),) = found
    assert message in got_message
    assert (got_line, got_column) == (line, column), got_message
    assert got_message[0].islower(), got_message


# --- invalid workflow documents ------------------------------------------------------------------

WORKFLOW_CASES = [
    pytest.param(
        """\
        name: wf
        schemaVersion: 1.0
        """,
        1, 1, "the workflow document is missing 'steps'",
        id="wf-missing-steps",
    ),
    pytest.param(
        """\
        schemaVersion: 1.5
        steps:
          - {name: Launch, action: LaunchInstance}
        """,
        1, 1, "schemaVersion must be 1.0, not the number 1.5",
        id="wf-schema-version",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        steps:
          - name: Launch
            action: launchinstance
        """,
        4, 5, "unknown workflow action 'launchinstance'; did you mean 'LaunchInstance'?",
        id="wf-action-case",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        steps:
          - name: Launch
            action: LaunchInstance
          - name: Launch
            action: TerminateInstance
        """,
        5, 5, "duplicate step name 'Launch' (first defined at line 3, column 5)",
        id="wf-duplicate-step",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        steps:
          - name: Launch
            action: LaunchInstance
            onFailure: Ignore
        """,
        5, 5, "onFailure must be 'Abort' or 'Continue', not 'Ignore'",
        id="wf-onfailure-ignore",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        steps:
          - name: Launch
            action: LaunchInstance
            timeoutSeconds: -1
        """,
        5, 5, "timeoutSeconds must be a positive whole number, not the number -1",
        id="wf-timeout-negative",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        steps:
          - name: Launch
            action: LaunchInstance
            rollbackEnabled: "yes"
        """,
        5, 5, "rollbackEnabled must be true or false, not 'yes'",
        id="wf-rollback-not-bool",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        steps:
          - name: Launch
            action: LaunchInstance
            maxAttempts: 2
        """,
        5, 5, "unknown step key 'maxAttempts'",
        id="wf-unknown-step-key",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        steps:
          - name: 1stStep
            action: LaunchInstance
        """,
        3, 5, "a workflow step name must start with a letter",
        id="wf-step-name-pattern",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        parameters:
          - name: count
            type: int
        steps:
          - name: Launch
            action: LaunchInstance
        """,
        4, 5, "parameter 'count' has type 'int'; expected 'string', 'integer', 'boolean' or 'stringList'",
        id="wf-parameter-type",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        steps:
          - name: Build
            action: ExecuteComponents
            inputs:
              instanceId.$: "$.stepOutputs.Launch.instanceId"
          - name: Launch
            action: LaunchInstance
        """,
        6, 7, "reference '$.stepOutputs.Launch' reads step 'Launch', which does not run before this step",
        id="wf-reference-later-step",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        steps:
          - name: Wait
            action: WaitForAction
            if:
              booleanEquals: true
              value: "$.parameters.waitAtEnd"
        """,
        7, 7, "unknown parameter reference '$.parameters.waitAtEnd'",
        id="wf-reference-unknown-parameter",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        steps:
          - name: Launch
            action: LaunchInstance
          - name: Terminate
            action: TerminateInstance
            inputs:
              instanceId.$: "$.Launch.outputs.instanceId"
        """,
        8, 7, "write '$.stepOutputs.Launch.<output>'",
        id="wf-reference-wrong-form",
    ),
    pytest.param(
        """\
        schemaVersion: 1.0
        steps:
          - name: Launch
            action: LaunchInstance
            inputs: [waitFor]
        """,
        5, 5, "the inputs of a workflow step must be a map, not a list of 1 item",
        id="wf-inputs-list",
    ),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), WORKFLOW_CASES)
def test_workflow_problem(text: str, line: int, column: int, message: str) -> None:
    found = run(text, check_workflow_document)
    assert len(found) == 1, found
    ((got_line, got_column, got_message),) = found
    assert message in got_message
    assert (got_line, got_column) == (line, column), got_message
    assert got_message[0].islower(), got_message


def test_every_problem_in_a_broken_document_is_reported() -> None:
    found = run(
        """\
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: One
                action: executebash
                onFailure: never
                timeoutSeconds: 0
                inputs: {commands: [echo]}
              - name: Two
                action: S3Download
                inputs: [{source: s3://b/k}]
        """
    )
    assert [(line, column) for line, column, _ in sorted(found)] == [(6, 9), (7, 9), (8, 9), (12, 18)]


def test_workflow_step_limit() -> None:
    steps = "".join(f"  - {{name: Step{i:02d}, action: WaitForAction}}\n" for i in range(16))
    found = run("schemaVersion: 1.0\nsteps:\n" + steps, check_workflow_document)
    assert found == [(2, 1, "the workflow has 16 steps; Image Builder allows at most 15")]


# --- helpers used by versioning ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"phases": [{"name": "test", "steps": []}]}, "TEST"),
        ({"phases": [{"name": "build", "steps": []}]}, "BUILD"),
        ({"phases": [{"name": "build"}, {"name": "test"}]}, "BUILD"),
        ({"phases": [{"name": "validate"}, {"name": "test"}]}, "BUILD"),
        ({"phases": [{"name": "Test"}]}, "BUILD"),
        ({"phases": []}, "BUILD"),
        ({}, "BUILD"),
        ("not a document", "BUILD"),
    ],
)
def test_component_type(value: Any, expected: str) -> None:
    assert component_type(value) == expected


def test_component_type_of_loaded_documents() -> None:
    problems = Problems()
    assert component_type(load_text(TEST_ONLY, "doc.yml", problems)[0].value) == "TEST"
    assert component_type(load_text(LINUX_HARDENING, "doc.yml", problems)[0].value) == "BUILD"


def test_parameter_names_types_and_step_index() -> None:
    problems = Problems()
    value = load_text(LINUX_HARDENING, "doc.yml", problems)[0].value
    assert parameter_names(value) == ["SshPort", "AuditRules"]
    assert parameter_types(value) == {"SshPort": "string", "AuditRules": "string"}
    index = step_index(value)
    assert list(index) == [
        ("build", "UpdateSystem"),
        ("build", "CreateConfigDir"),
        ("build", "HardenSsh"),
        ("validate", "CheckSsh"),
    ]
    assert index[("build", "HardenSsh")]["maxAttempts"] == 3
    assert parameter_names({"parameters": "junk"}) == []
    assert parameter_types({"parameters": [{"Port": None}]}) == {"Port": ""}
    assert step_index({"phases": [{"name": "build", "steps": "junk"}]}) == {}


# --- inline size ---------------------------------------------------------------------------------


def test_inline_size_limit() -> None:
    here = Location("manifests/component.yml", 7, 5)
    problems = Problems()
    check_inline_size("x" * INLINE_LIMIT, here, problems)
    assert problems.items == []
    check_inline_size("x" * (INLINE_LIMIT + 1), here, problems)
    assert len(problems.items) == 1
    problem = problems.items[0]
    assert problem.location == here
    assert "16,000 characters" in problem.message
    assert "16,001" in problem.message
    assert "'uri'" in problem.message and "S3" in problem.message


# --- robustness ----------------------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "name", "description", "schemaVersion", "parameters", "constants", "phases", "steps", "action",
        "inputs", "onFailure", "timeoutSeconds", "maxAttempts", "loop", "for", "forEach", "start", "end",
        "updateBy", "list", "delimiter", "type", "value", "default", "commands", "file", "source",
        "destination", "if", "rollbackEnabled", "outputs",
    ]
) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-5, max_value=5)
    | st.floats(allow_nan=True)
    | st.sampled_from(
        [
            "build", "validate", "test", "ExecuteBash", "S3Download", "ExecutePowerShell", "Reboot",
            "LaunchInstance", "string", "1.0", "Abort", "{{ loop.value }}", "{{ build.a.outputs.stdout }}",
            "{{ x }}", "{{{ y }}}", "$.stepOutputs.a.b", "$.parameters.p", "$.a.outputs", "{{", "}}",
        ]
    )
    | st.text(max_size=12)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_random_structures_never_raise(value: Any) -> None:
    doc = Located(value, "x.yml", {})
    problems = Problems()
    check_component_document(doc, problems)
    check_workflow_document(doc, problems)
    component_type(value)
    parameter_names(value)
    parameter_types(value)
    step_index(value)
    for problem in problems.items:
        assert problem.location.path == "x.yml"
        assert problem.message


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(KEYS, VALUES, max_size=6), min_size=1, max_size=3))
def test_random_steps_in_a_document_never_raise(steps: list[dict[str, Any]]) -> None:
    value = {"schemaVersion": 1.0, "phases": [{"name": "build", "steps": steps}], "steps": steps}
    problems = Problems()
    check_component_document(Located(value, "x.yml", {}), problems)
    check_workflow_document(Located(value, "x.yml", {}), problems)
