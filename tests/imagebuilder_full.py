"""Representative Image Builder resources created with every optional member their create call takes.

Used by the sandbox conformance suites that compare outputs against published material: the AWS CLI
examples suite (to set up the resources an example's ARNs name) and the output-members suite (to
check that every member the service returns for a fully specified resource comes back). Importable
as `imagebuilder_full` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

COMPONENT_DOCUMENT = """\
name: greeter
description: Says something configurable.
schemaVersion: 1.0
parameters:
  - Greeting:
      type: string
      default: hello
      description: What to say.
phases:
  - name: build
    steps:
      - name: Greet
        action: ExecuteBash
        inputs:
          commands:
            - echo "{{ Greeting }}"
"""

WORKFLOW_DOCUMENT = """\
name: build-with-parameters
description: A build workflow with one parameter.
schemaVersion: 1.0
parameters:
  - name: waitSeconds
    type: integer
    default: 5
    description: Seconds to wait before the build.
steps:
  - name: LaunchBuildInstance
    action: LaunchInstance
    description: Launch the build instance and wait for its SSM agent.
    onFailure: Abort
    timeoutSeconds: 3600
    inputs:
      waitFor: ssmAgent
  - name: CreateOutputAMI
    action: CreateImage
    description: Create the output AMI from the build instance.
    onFailure: Abort
    inputs:
      instanceId.$: "$.stepOutputs.LaunchBuildInstance.instanceId"
"""

DOCKERFILE = (
    "FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:environments }}}\n{{{ imagebuilder:components }}}\n"
)


class FullEstate:
    """Creates fully specified resources in one account and region of a sandbox through a boto3 client."""

    def __init__(self, client: Any, account: str, endpoint_url: str | None = None) -> None:
        self.client = client
        self.account = account
        self.region: str = client.meta.region_name
        self.endpoint_url = endpoint_url

    # --- shared values ----------------------------------------------------------------------------

    def kms_key(self) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    def role(self, name: str = "ImageBuilderExecution") -> str:
        return f"arn:aws:iam::{self.account}:role/{name}"

    def amazon(self, kind: str, name: str) -> str:
        """A wildcard ARN of an Amazon-owned catalog entry in this region."""
        return f"arn:aws:imagebuilder:{self.region}:aws:{kind}/{name}/x.x.x"

    @staticmethod
    def tags(name: str) -> dict[str, str]:
        return {"Name": name, "Team": "platform"}

    # --- versioned kinds --------------------------------------------------------------------------

    def component(self, name: str, version: str = "1.0.0", **override: Any) -> str:
        params = {
            "name": name,
            "semanticVersion": version,
            "description": f"{name} component",
            "changeDescription": "First version.",
            "platform": "Linux",
            "supportedOsVersions": ["Amazon Linux 2023"],
            "data": COMPONENT_DOCUMENT,
            "kmsKeyId": self.kms_key(),
            "tags": self.tags(name),
            **override,
        }
        return str(self.client.create_component(**params)["componentBuildVersionArn"])

    def workflow(self, name: str, version: str = "1.0.0") -> str:
        return str(
            self.client.create_workflow(
                name=name,
                semanticVersion=version,
                description=f"{name} workflow",
                changeDescription="First version.",
                data=WORKFLOW_DOCUMENT,
                kmsKeyId=self.kms_key(),
                tags=self.tags(name),
                type="BUILD",
            )["workflowBuildVersionArn"]
        )

    @staticmethod
    def _recipe_components(component_arn: str) -> list[dict[str, Any]]:
        return [{"componentArn": component_arn, "parameters": [{"name": "Greeting", "value": ["hi"]}]}]

    def image_recipe(self, name: str, version: str = "1.0.0", component_arn: str | None = None) -> str:
        component_arn = component_arn or self.component(f"{name}-setup")
        return str(
            self.client.create_image_recipe(
                name=name,
                description=f"{name} recipe",
                semanticVersion=version,
                components=self._recipe_components(component_arn),
                parentImage=self.amazon("image", "amazon-linux-2023-x86"),
                blockDeviceMappings=[
                    {
                        "deviceName": "/dev/xvda",
                        "ebs": {
                            "deleteOnTermination": True,
                            "encrypted": True,
                            "kmsKeyId": self.kms_key(),
                            "volumeSize": 30,
                            "volumeType": "gp3",
                            "iops": 3000,
                            "throughput": 125,
                            "snapshotId": "snap-0123456789abcdef0",
                        },
                    }
                ],
                tags=self.tags(name),
                workingDirectory="/opt/build",
                additionalInstanceConfiguration={
                    "systemsManagerAgent": {"uninstallAfterBuild": True},
                    "userDataOverride": "IyEvYmluL2Jhc2gKZWNobyBoZWxsbwo=",
                },
                amiTags={"Image": name},
            )["imageRecipeArn"]
        )

    def container_recipe(self, name: str, version: str = "1.0.0", component_arn: str | None = None) -> str:
        component_arn = component_arn or self.component(f"{name}-setup")
        return str(
            self.client.create_container_recipe(
                containerType="DOCKER",
                name=name,
                description=f"{name} container recipe",
                semanticVersion=version,
                components=self._recipe_components(component_arn),
                instanceConfiguration={
                    "image": "ami-0123456789abcdef0",
                    "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 30}}],
                },
                dockerfileTemplateData=DOCKERFILE,
                platformOverride="Linux",
                imageOsVersionOverride="Amazon Linux 2023",
                parentImage="amazonlinux:2023",
                tags=self.tags(name),
                workingDirectory="/tmp",
                targetRepository={"service": "ECR", "repositoryName": name},
                kmsKeyId=self.kms_key(),
            )["containerRecipeArn"]
        )

    # --- mutable kinds ----------------------------------------------------------------------------

    def infrastructure(self, name: str) -> str:
        return str(
            self.client.create_infrastructure_configuration(
                name=name,
                description=f"{name} infrastructure",
                instanceTypes=["m5.large", "m5.xlarge"],
                instanceProfileName="EC2InstanceProfileForImageBuilder",
                securityGroupIds=["sg-a1b2c3d4"],
                subnetId="subnet-a1b2c3d4",
                logging={"s3Logs": {"s3BucketName": "build-logs", "s3KeyPrefix": name}},
                keyPair="build-key",
                terminateInstanceOnFailure=False,
                snsTopicArn=f"arn:aws:sns:{self.region}:{self.account}:image-builds",
                resourceTags={"CostCenter": "images"},
                instanceMetadataOptions={"httpTokens": "required", "httpPutResponseHopLimit": 2},
                tags=self.tags(name),
                placement={"availabilityZone": f"{self.region}a", "tenancy": "default"},
            )["infrastructureConfigurationArn"]
        )

    def distribution(self, name: str) -> str:
        return str(
            self.client.create_distribution_configuration(
                name=name,
                description=f"{name} distribution",
                distributions=[
                    {
                        "region": self.region,
                        "amiDistributionConfiguration": {
                            "name": "golden {{imagebuilder:buildDate}}",
                            "description": "Golden image",
                            "targetAccountIds": [self.account],
                            "amiTags": {"Distributed": "yes"},
                            "kmsKeyId": self.kms_key(),
                            "launchPermission": {"userIds": ["210987654321"]},
                        },
                        "containerDistributionConfiguration": {
                            "description": "Golden container",
                            "containerTags": ["latest"],
                            "targetRepository": {"service": "ECR", "repositoryName": name},
                        },
                        "licenseConfigurationArns": [
                            f"arn:aws:license-manager:{self.region}:{self.account}:license-configuration:lic-0123456789abcdef0123456789abcdef"
                        ],
                        "launchTemplateConfigurations": [
                            {"launchTemplateId": "lt-0123456789abcdef0", "accountId": self.account,
                             "setDefaultVersion": True}
                        ],
                        "s3ExportConfiguration": {
                            "roleName": "vmimport",
                            "diskImageFormat": "VMDK",
                            "s3Bucket": "image-exports",
                            "s3Prefix": name,
                        },
                        "ssmParameterConfigurations": [
                            {"amiAccountId": self.account, "parameterName": f"/images/{name}",
                             "dataType": "aws:ec2:image"}
                        ],
                    }
                ],
                tags=self.tags(name),
            )["distributionConfigurationArn"]
        )

    def pipeline(
        self,
        name: str,
        recipe_arn: str,
        infrastructure_arn: str,
        distribution_arn: str | None = None,
        workflow_arn: str | None = None,
        container: bool = False,
    ) -> str:
        recipe = {"containerRecipeArn": recipe_arn} if container else {"imageRecipeArn": recipe_arn}
        return str(
            self.client.create_image_pipeline(
                name=name,
                description=f"{name} pipeline",
                **recipe,
                infrastructureConfigurationArn=infrastructure_arn,
                distributionConfigurationArn=distribution_arn or self.distribution(f"{name}-distribution"),
                imageTestsConfiguration={"imageTestsEnabled": True, "timeoutMinutes": 60},
                enhancedImageMetadataEnabled=True,
                schedule={
                    "scheduleExpression": "cron(0 0 ? * SUN *)",
                    "timezone": "Etc/UTC",
                    "pipelineExecutionStartCondition": "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE",
                    "autoDisablePolicy": {"failureCount": 3},
                },
                status="ENABLED",
                tags=self.tags(name),
                imageTags={"Pipeline": name},
                imageScanningConfiguration={
                    "imageScanningEnabled": True,
                    "ecrConfiguration": {"repositoryName": "scans", "containerTags": ["scanned"]},
                },
                workflows=[
                    {
                        "workflowArn": workflow_arn or self.workflow(f"{name}-build"),
                        "parameters": [{"name": "waitSeconds", "value": ["10"]}],
                        "onFailure": "ABORT",
                        "parallelGroup": "main",
                    }
                ],
                executionRole=self.role(),
                loggingConfiguration={"imageLogGroupName": f"/images/{name}", "pipelineLogGroupName": f"/pipes/{name}"},
            )["imagePipelineArn"]
        )

    def lifecycle_policy(self, name: str, recipe: str = "golden") -> str:
        return str(
            self.client.create_lifecycle_policy(
                name=name,
                description=f"{name} lifecycle",
                status="ENABLED",
                executionRole=self.role("ImageBuilderLifecycle"),
                resourceType="AMI_IMAGE",
                policyDetails=[
                    {
                        "action": {"type": "DELETE", "includeResources": {"amis": True, "snapshots": True}},
                        "filter": {"type": "AGE", "value": 30, "unit": "DAYS", "retainAtLeast": 2},
                        "exclusionRules": {
                            "tagMap": {"Keep": "yes"},
                            "amis": {
                                "isPublic": True,
                                "regions": [self.region],
                                "sharedAccounts": ["210987654321"],
                                "lastLaunched": {"value": 7, "unit": "DAYS"},
                                "tagMap": {"Pinned": "yes"},
                            },
                        },
                    }
                ],
                resourceSelection={"recipes": [{"name": recipe, "semanticVersion": "1.x.x"}]},
                tags=self.tags(name),
            )["lifecyclePolicyArn"]
        )

    # --- images -----------------------------------------------------------------------------------

    def build(self, pipeline_arn: str, tags: dict[str, str] | None = None) -> str:
        """One image build of a pipeline, brought to its end by moving the sandbox clock on."""
        arn = str(
            self.client.start_image_pipeline_execution(imagePipelineArn=pipeline_arn, tags=tags or {"Build": "manual"})[
                "imageBuildVersionArn"
            ]
        )
        self.finish_builds()
        return arn

    def finish_builds(self) -> None:
        """Advance a frozen sandbox clock well past any build's duration (a no-op for instant builds)."""
        self.advance(24 * 3600)

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock on by `seconds` of simulated time."""
        if self.endpoint_url is None:
            return
        request = urllib.request.Request(
            f"{self.endpoint_url}/_sandbox/clock",
            data=json.dumps({"advance": seconds}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()
