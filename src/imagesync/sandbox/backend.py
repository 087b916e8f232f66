"""The emulated Image Builder service: what each operation does to the sandbox state.

Called by the HTTP server with a validated parameter dict, inside one store transaction. Every
handler checks all it needs before it mutates anything, so an error never leaves a half-applied
write. Results are plain dicts in the API's output shapes; the protocol layer drops anything the
output shape does not define. The shared lookups and the readings the sandbox takes where the
service is undocumented are in `core`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from imagesync.sandbox import awstoe, s3, schedules, service_rules, sharing
from imagesync.sandbox.builds import BuildOperations
from imagesync.sandbox.core import (
    LABELS,
    MAX_COMPONENTS_PER_RECIPE,
    MAX_NODE,
    RESOURCE_COLLECTIONS,
    Core,
    Params,
    Record,
    Request,
    arn_name,
    build_of,
    by_name_and_version,
    digest,
    latest_per_name,
    latest_per_version,
    latest_references,
    paginate,
    parse_arn,
    parse_version,
    version_arn_of,
    version_key,
)
from imagesync.sandbox.documents import (
    component_parameters,
    component_type,
    parse_document,
    workflow_parameters,
)
from imagesync.sandbox.errors import SandboxError
from imagesync.sandbox.lifecycle import LifecycleOperations


class Backend(BuildOperations, LifecycleOperations, Core):
    """Every operation the sandbox implements, on top of the shared lookups of `Core`."""

    # --- components and workflows (versions with build numbers) -------------------------------

    def _create_built(self, req: Request, collection: str, type_path: str, record: Record, content: Record) -> Record:
        p = req.params
        parse_version(p["semanticVersion"])
        if p.get("data") is not None and p.get("uri") is not None:
            raise SandboxError(
                "InvalidParameterCombinationException",
                "You cannot specify both 'data' and 'uri'; specify exactly one.",
            )
        if p.get("data") is None and p.get("uri") is None:
            raise SandboxError("InvalidRequestException", "You must specify either 'data' or 'uri'.")
        if p.get("dryRun"):
            raise SandboxError(
                "DryRunOperationException", "The request would have succeeded, but the dryRun flag is set."
            )
        base = f"{req.prefix}{type_path}/{arn_name(p['name'])}"
        version_arn = f"{base}/{p['semanticVersion']}"
        builds = req.table(collection).builds(version_arn)
        content_digest = digest(content)
        if builds:
            newest = max(builds, key=build_of)
            if self.versioning == "legacy" or newest["_contentDigest"] == content_digest:
                raise SandboxError(
                    "ResourceAlreadyExistsException",
                    f"The following resource '{LABELS[collection]}' already exists: '{newest['arn']}'.",
                )
        build = max((build_of(r) for r in builds), default=0) + 1
        arn = f"{version_arn}/{build}"
        record.update(
            arn=arn,
            name=p["name"],
            version=p["semanticVersion"],
            owner=req.account,
            dateCreated=req.timestamp(),
            tags=dict(p.get("tags") or {}),
            _contentDigest=content_digest,
        )
        req.table(collection)[arn] = record
        return {"arn": arn, "latestVersionReferences": latest_references(base, p["semanticVersion"])}

    def _uri_document(self, req: Request) -> str | None:
        """The request's inline `data`, or the document its `uri` names when an S3 endpoint is set."""
        p = req.params
        if p.get("data") is not None or p.get("uri") is None or not self.settings.s3_endpoint:
            return p.get("data")
        return s3.read_document(self.settings.s3_endpoint, p["uri"], req.region)

    def op_create_component(self, req: Request) -> Record:
        p = req.params
        content = {k: p.get(k) for k in ("data", "uri", "platform", "description", "supportedOsVersions", "kmsKeyId")}
        data = content["data"] = self._uri_document(req)
        doc = parse_document(data, "data") if data is not None else None
        if doc is not None:
            awstoe.check_component_document(doc, p["platform"])
        record: Record = {
            "description": p.get("description"),
            "changeDescription": p.get("changeDescription"),
            "type": component_type(doc) if doc is not None else "BUILD",
            "platform": p["platform"],
            "supportedOsVersions": p.get("supportedOsVersions"),
            "state": {"status": "ACTIVE"},
            "parameters": component_parameters(doc) if doc is not None else None,
            "data": data,
            "_uri": p.get("uri"),
            "kmsKeyId": p.get("kmsKeyId"),
            "encrypted": True,
        }
        created = self._create_built(req, "components", "component", record, content)
        return {
            "componentBuildVersionArn": created["arn"],
            "latestVersionReferences": created["latestVersionReferences"],
        }

    def op_get_component(self, req: Request) -> Record:
        arn = req.params["componentBuildVersionArn"]
        record = self._resolve(req, "components", arn, "componentBuildVersionArn")
        if record is None:
            raise SandboxError("ResourceNotFoundException", f"The resource '{arn}' does not exist.")
        base = record["arn"].rsplit("/", 2)[0]
        return {"component": record, "latestVersionReferences": latest_references(base, record["version"])}

    def op_list_components(self, req: Request) -> Record:
        by_name = bool(req.params.get("byName"))
        rows = self._listing(req, "components", req.params.get("owner"), ("versions", by_name), _latest(by_name))
        page, token = paginate(
            req.operation,
            req.params,
            rows,
            {
                "name": lambda r: r["name"],
                "platform": lambda r: r.get("platform"),
                "type": lambda r: r.get("type"),
                "version": lambda r: r["version"],
                "description": lambda r: r.get("description"),
                "supportedOsVersion": lambda r: r.get("supportedOsVersions"),
            },
            lambda r: dict(r, arn=version_arn_of(r["arn"]), status=r["state"]["status"]),
        )
        return {"componentVersionList": page, "nextToken": token}

    def op_list_component_build_versions(self, req: Request) -> Record:
        version_arn = req.params["componentVersionArn"]
        pool = self._family_builds(req, "components", version_arn, "componentVersionArn")
        page, token = paginate(req.operation, req.params, pool)
        return {"componentSummaryList": page, "nextToken": token}

    def op_delete_component(self, req: Request) -> Record:
        arn = req.params["componentBuildVersionArn"]
        self._delete(req, "components", arn)
        return {"componentBuildVersionArn": arn}

    def op_create_workflow(self, req: Request) -> Record:
        p = req.params
        content = {k: p.get(k) for k in ("data", "uri", "type", "description", "kmsKeyId")}
        data = content["data"] = self._uri_document(req)
        doc = parse_document(data, "data") if data is not None else None
        if doc is not None:
            awstoe.check_workflow_document(doc)
        record: Record = {
            "description": p.get("description"),
            "changeDescription": p.get("changeDescription"),
            "type": p["type"],
            "state": {"status": "ACTIVE"},
            "data": data,
            "_uri": p.get("uri"),
            "kmsKeyId": p.get("kmsKeyId"),
            "parameters": workflow_parameters(doc) if doc is not None else None,
        }
        type_path = f"workflow/{p['type'].lower()}"
        created = self._create_built(req, "workflows", type_path, record, content)
        return {
            "workflowBuildVersionArn": created["arn"],
            "latestVersionReferences": created["latestVersionReferences"],
        }

    def op_get_workflow(self, req: Request) -> Record:
        arn = req.params["workflowBuildVersionArn"]
        record = self._resolve(req, "workflows", arn, "workflowBuildVersionArn")
        if record is None:
            raise SandboxError("ResourceNotFoundException", f"The resource '{arn}' does not exist.")
        base = record["arn"].rsplit("/", 2)[0]
        return {"workflow": record, "latestVersionReferences": latest_references(base, record["version"])}

    def op_list_workflows(self, req: Request) -> Record:
        by_name = bool(req.params.get("byName"))
        rows = self._listing(req, "workflows", req.params.get("owner"), ("versions", by_name), _latest(by_name))
        page, token = paginate(
            req.operation,
            req.params,
            rows,
            {
                "name": lambda r: r["name"],
                "type": lambda r: r["type"],
                "version": lambda r: r["version"],
            },
            lambda r: dict(r, arn=version_arn_of(r["arn"])),
        )
        return {"workflowVersionList": page, "nextToken": token}

    def op_list_workflow_build_versions(self, req: Request) -> Record:
        pool = self._family_builds(req, "workflows", req.params["workflowVersionArn"], "workflowVersionArn")
        page, token = paginate(req.operation, req.params, pool)
        return {"workflowSummaryList": page, "nextToken": token}

    def op_delete_workflow(self, req: Request) -> Record:
        arn = req.params["workflowBuildVersionArn"]
        self._delete(req, "workflows", arn)
        return {"workflowBuildVersionArn": arn}

    # --- recipes (versions without build numbers) ---------------------------------------------

    def _recipe_version(self, req: Request, collection: str) -> tuple[str, str]:
        p = req.params
        pattern = parse_version(p["semanticVersion"], wildcards=True)
        base = req.arn(collection, p["name"])
        existing = [version_key(r["version"]) for r in req.table(collection).family(base)]
        if None not in pattern:
            version = p["semanticVersion"]
            self._ensure_new(req, collection, f"{base}/{version}")
            return base, version
        first = pattern.index(None)
        same_prefix = [v for v in existing if list(v[:first]) == pattern[:first]]
        nodes = [n for n in pattern[:first] if n is not None]
        nodes.append(max((v[first] for v in same_prefix), default=-1) + 1)
        nodes.extend([0] * (3 - len(nodes)))
        if nodes[first] > MAX_NODE:
            raise SandboxError("InvalidVersionNumberException", f"No version above {p['semanticVersion']} is left.")
        return base, ".".join(str(n) for n in nodes)

    def _recipe_components(self, req: Request) -> list[Record]:
        comps = req.params.get("components") or []
        if len(comps) > MAX_COMPONENTS_PER_RECIPE:
            raise SandboxError(
                "InvalidParameterValueException",
                f"The value supplied for parameter 'components' is not valid. A recipe can have at most "
                f"{MAX_COMPONENTS_PER_RECIPE} components, got {len(comps)}.",
            )
        for i, comp in enumerate(comps):
            component = self._must_resolve(req, "components", comp["componentArn"], f"components[{i}].componentArn")
            service_rules.check_component_parameters(i, comp.get("parameters") or [], component)
        return copy.deepcopy(comps)

    def _parent(self, req: Request, parent: str) -> Record:
        """What a parent image reference resolves to: platform and OS version of the base."""
        if service_rules.image_parent_form(parent) != "arn":
            return {"platform": "Linux", "osVersion": None}  # AMI id, ssm: parameter, or product id
        parent = service_rules.parent_image_arn(parent)
        ref = parse_arn(parent, "parentImage")
        if ref.type != "image":
            raise SandboxError(
                "InvalidParameterValueException",
                f"The value supplied for parameter 'parentImage' is not valid. '{parent}' is not an image ARN.",
            )
        image = self._resolve_quiet(req, "images", parent)
        if image is not None:
            return image
        if ref.account == req.account:
            recipes = req.table("imageRecipes").family(f"{req.prefix}image-recipe/{ref.name}")
            recipe = next((r for r in recipes if arn_name(r["name"]) == ref.name), None)
            if recipe is not None:
                return {"platform": recipe["platform"], "osVersion": None}
        raise SandboxError(
            "InvalidParameterValueException",
            f"The value supplied for parameter 'parentImage' is not valid. The image '{parent}' does not exist.",
        )

    def op_create_image_recipe(self, req: Request) -> Record:
        p = req.params
        base, version = self._recipe_version(req, "imageRecipes")
        components = self._recipe_components(req)
        parent = self._parent(req, p["parentImage"])
        arn = f"{base}/{version}"
        req.table("imageRecipes")[arn] = {
            "arn": arn,
            "type": "AMI",
            "name": p["name"],
            "description": p.get("description"),
            "platform": parent["platform"],
            "owner": req.account,
            "version": version,
            "components": components,
            "parentImage": p["parentImage"],
            "blockDeviceMappings": p.get("blockDeviceMappings"),
            "dateCreated": req.timestamp(),
            "tags": dict(p.get("tags") or {}),
            "workingDirectory": p.get("workingDirectory"),
            "additionalInstanceConfiguration": p.get("additionalInstanceConfiguration"),
            "amiTags": p.get("amiTags"),
            "_osVersion": parent.get("osVersion"),
        }
        return {"imageRecipeArn": arn, "latestVersionReferences": latest_references(base, version)}

    def op_create_container_recipe(self, req: Request) -> Record:
        p = req.params
        has_data, has_uri = p.get("dockerfileTemplateData") is not None, p.get("dockerfileTemplateUri") is not None
        if has_data == has_uri:
            raise SandboxError(
                "InvalidParameterCombinationException" if has_data else "InvalidRequestException",
                "Specify exactly one of 'dockerfileTemplateData' and 'dockerfileTemplateUri'.",
            )
        base, version = self._recipe_version(req, "containerRecipes")
        components = self._recipe_components(req)
        # An Image Builder image parent gives its platform; another base image is Linux unless overridden.
        platform = p.get("platformOverride") or "Linux"
        if service_rules.container_parent_form(p["parentImage"]) == "arn":
            platform = p.get("platformOverride") or self._parent(req, p["parentImage"])["platform"]
        arn = f"{base}/{version}"
        req.table("containerRecipes")[arn] = {
            "arn": arn,
            "containerType": p["containerType"],
            "name": p["name"],
            "description": p.get("description"),
            "platform": platform,
            "owner": req.account,
            "version": version,
            "components": components,
            "instanceConfiguration": p.get("instanceConfiguration"),
            "dockerfileTemplateData": p.get("dockerfileTemplateData"),
            "_dockerfileTemplateUri": p.get("dockerfileTemplateUri"),
            "kmsKeyId": p.get("kmsKeyId"),
            "encrypted": True,
            "parentImage": p["parentImage"],
            "dateCreated": req.timestamp(),
            "tags": dict(p.get("tags") or {}),
            "workingDirectory": p.get("workingDirectory"),
            "targetRepository": p["targetRepository"],
            "imageOsVersionOverride": p.get("imageOsVersionOverride"),
        }
        return {"containerRecipeArn": arn, "latestVersionReferences": latest_references(base, version)}

    def _get_recipe(self, req: Request, collection: str, member: str, key: str) -> Record:
        arn = req.params[member]
        record = self._resolve(req, collection, arn, member)
        if record is None:
            raise SandboxError("ResourceNotFoundException", f"The resource '{arn}' does not exist.")
        base = record["arn"].rsplit("/", 1)[0]
        return {key: record, "latestVersionReferences": latest_references(base, record["version"])}

    def op_get_image_recipe(self, req: Request) -> Record:
        return self._get_recipe(req, "imageRecipes", "imageRecipeArn", "imageRecipe")

    def op_get_container_recipe(self, req: Request) -> Record:
        return self._get_recipe(req, "containerRecipes", "containerRecipeArn", "containerRecipe")

    def op_list_image_recipes(self, req: Request) -> Record:
        owner = req.params.get("owner")
        items = self._listing(req, "imageRecipes", owner, "sorted", by_name_and_version)
        page, token = paginate(
            req.operation,
            req.params,
            items,
            {
                "name": lambda r: r["name"],
                "parentImage": lambda r: r["parentImage"],
                "platform": lambda r: r["platform"],
            },
        )
        return {"imageRecipeSummaryList": page, "nextToken": token}

    def op_list_container_recipes(self, req: Request) -> Record:
        owner = req.params.get("owner")
        items = self._listing(req, "containerRecipes", owner, "sorted", by_name_and_version)
        page, token = paginate(
            req.operation,
            req.params,
            items,
            {
                "name": lambda r: r["name"],
                "parentImage": lambda r: r["parentImage"],
                "platform": lambda r: r["platform"],
                "containerType": lambda r: r["containerType"],
            },
            # ContainerRecipeSummary.instanceImage is the build instance's image from instanceConfiguration.
            lambda r: dict(r, instanceImage=(r.get("instanceConfiguration") or {}).get("image")),
        )
        return {"containerRecipeSummaryList": page, "nextToken": token}

    def op_delete_image_recipe(self, req: Request) -> Record:
        self._delete(req, "imageRecipes", req.params["imageRecipeArn"])
        return {"imageRecipeArn": req.params["imageRecipeArn"]}

    def op_delete_container_recipe(self, req: Request) -> Record:
        self._delete(req, "containerRecipes", req.params["containerRecipeArn"])
        return {"containerRecipeArn": req.params["containerRecipeArn"]}

    # --- mutable kinds --------------------------------------------------------------------------

    def _infrastructure_fields(self, p: Params) -> Record:
        return {
            "description": p.get("description"),
            "instanceTypes": p.get("instanceTypes"),
            "instanceProfileName": p["instanceProfileName"],
            "securityGroupIds": p.get("securityGroupIds"),
            "subnetId": p.get("subnetId"),
            "logging": p.get("logging"),
            "keyPair": p.get("keyPair"),
            "terminateInstanceOnFailure": p.get("terminateInstanceOnFailure", True),
            "snsTopicArn": p.get("snsTopicArn"),
            "resourceTags": p.get("resourceTags"),
            "instanceMetadataOptions": p.get("instanceMetadataOptions"),
            "placement": p.get("placement"),
        }

    def _create_mutable(self, req: Request, collection: str, fields: Record, timestamps: bool = False) -> str:
        p = req.params
        arn = req.arn(collection, p["name"])
        self._ensure_new(req, collection, arn)
        now: Any = req.timestamp()
        req.table(collection)[arn] = {
            "arn": arn,
            "name": p["name"],
            **fields,
            "dateCreated": now,
            "tags": dict(p.get("tags") or {}),
        }
        return arn

    def _update_mutable(self, req: Request, collection: str, member: str, fields: Record) -> str:
        arn = req.params[member]
        record = self._get(req, collection, arn)
        keep: Record = {k: record[k] for k in ("arn", "name", "dateCreated", "tags") if k in record}
        keep.update({k: v for k, v in record.items() if k.startswith("_")})
        req.table(collection)[arn] = {**keep, **fields, "dateUpdated": req.timestamp()}
        return arn

    def op_create_infrastructure_configuration(self, req: Request) -> Record:
        arn = self._create_mutable(req, "infrastructureConfigurations", self._infrastructure_fields(req.params))
        return {"infrastructureConfigurationArn": arn}

    def op_update_infrastructure_configuration(self, req: Request) -> Record:
        fields = self._infrastructure_fields(req.params)
        arn = self._update_mutable(req, "infrastructureConfigurations", "infrastructureConfigurationArn", fields)
        return {"infrastructureConfigurationArn": arn}

    def op_get_infrastructure_configuration(self, req: Request) -> Record:
        record = self._get(req, "infrastructureConfigurations", req.params["infrastructureConfigurationArn"])
        return {"infrastructureConfiguration": record}

    def op_list_infrastructure_configurations(self, req: Request) -> Record:
        page, token = paginate(
            req.operation,
            req.params,
            self._listing(req, "infrastructureConfigurations", None, "sorted", by_name_and_version),
            {
                "name": lambda r: r["name"],
            },
        )
        return {"infrastructureConfigurationSummaryList": page, "nextToken": token}

    def op_delete_infrastructure_configuration(self, req: Request) -> Record:
        self._delete(req, "infrastructureConfigurations", req.params["infrastructureConfigurationArn"])
        return {"infrastructureConfigurationArn": req.params["infrastructureConfigurationArn"]}

    def _distribution_fields(self, p: Params, region: str) -> Record:
        service_rules.check_distribution_regions(p["distributions"], region)
        regions = [d["region"] for d in p["distributions"]]
        duplicates = sorted({r for r in regions if regions.count(r) > 1})
        if duplicates:
            raise SandboxError(
                "InvalidParameterValueException",
                f"The value supplied for parameter 'distributions' is not valid. Each region may appear "
                f"once; repeated: {', '.join(duplicates)}.",
            )
        return {"description": p.get("description"), "distributions": p["distributions"], "timeoutMinutes": 720}

    def op_create_distribution_configuration(self, req: Request) -> Record:
        fields = self._distribution_fields(req.params, req.region)
        arn = self._create_mutable(req, "distributionConfigurations", fields)
        return {"distributionConfigurationArn": arn}

    def op_update_distribution_configuration(self, req: Request) -> Record:
        fields = self._distribution_fields(req.params, req.region)
        arn = self._update_mutable(req, "distributionConfigurations", "distributionConfigurationArn", fields)
        return {"distributionConfigurationArn": arn}

    def op_get_distribution_configuration(self, req: Request) -> Record:
        record = self._get(req, "distributionConfigurations", req.params["distributionConfigurationArn"])
        return {"distributionConfiguration": record}

    def op_list_distribution_configurations(self, req: Request) -> Record:
        items = self._listing(req, "distributionConfigurations", None, "sorted", by_name_and_version)
        page, token = paginate(
            req.operation,
            req.params,
            items,
            {"name": lambda r: r["name"]},
            lambda r: dict(r, regions=[d["region"] for d in r["distributions"]]),
        )
        return {"distributionConfigurationSummaryList": page, "nextToken": token}

    def op_delete_distribution_configuration(self, req: Request) -> Record:
        self._delete(req, "distributionConfigurations", req.params["distributionConfigurationArn"])
        return {"distributionConfigurationArn": req.params["distributionConfigurationArn"]}

    def _pipeline_fields(self, req: Request) -> Record:
        p = req.params
        recipe = self._check_build_inputs(req)
        schedule = copy.deepcopy(p.get("schedule"))
        if schedule is not None:
            schedule.setdefault("timezone", "UTC")
            schedule.setdefault("pipelineExecutionStartCondition", "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE")
            schedules.validate(schedule)
        tests = dict(p.get("imageTestsConfiguration") or {})
        tests.setdefault("imageTestsEnabled", True)
        tests.setdefault("timeoutMinutes", 720)
        return {
            "description": p.get("description"),
            "platform": recipe["platform"],
            "enhancedImageMetadataEnabled": p.get("enhancedImageMetadataEnabled", True),
            "imageRecipeArn": p.get("imageRecipeArn"),
            "containerRecipeArn": p.get("containerRecipeArn"),
            "infrastructureConfigurationArn": p["infrastructureConfigurationArn"],
            "distributionConfigurationArn": p.get("distributionConfigurationArn"),
            "imageTestsConfiguration": tests,
            "schedule": schedule,
            "status": p.get("status", "ENABLED"),
            "imageScanningConfiguration": p.get("imageScanningConfiguration"),
            "executionRole": p.get("executionRole"),
            "workflows": p.get("workflows"),
            "loggingConfiguration": p.get("loggingConfiguration"),
            "imageTags": p.get("imageTags"),
            **self._pipeline_run_fields(req, schedule),
        }

    def op_create_image_pipeline(self, req: Request) -> Record:
        arn = self._create_mutable(req, "imagePipelines", self._pipeline_fields(req))
        # A new pipeline already carries dateUpdated, equal to dateCreated (GetImagePipeline and
        # ListImagePipelineImages in the AWS CLI's published examples show both on never-updated pipelines).
        record = req.table("imagePipelines")[arn]
        record["dateUpdated"] = record["dateCreated"]
        return {"imagePipelineArn": arn}

    def op_update_image_pipeline(self, req: Request) -> Record:
        fields = self._pipeline_fields(req)
        return {"imagePipelineArn": self._update_mutable(req, "imagePipelines", "imagePipelineArn", fields)}

    def op_get_image_pipeline(self, req: Request) -> Record:
        return {"imagePipeline": self._get(req, "imagePipelines", req.params["imagePipelineArn"])}

    def op_list_image_pipelines(self, req: Request) -> Record:
        page, token = paginate(
            req.operation,
            req.params,
            self._listing(req, "imagePipelines", None, "sorted", by_name_and_version),
            {
                name: _member(name)
                for name in (
                    "description",
                    "distributionConfigurationArn",
                    "imageRecipeArn",
                    "infrastructureConfigurationArn",
                    "name",
                    "status",
                )
            },
        )
        return {"imagePipelineList": page, "nextToken": token}

    def op_delete_image_pipeline(self, req: Request) -> Record:
        self._delete(req, "imagePipelines", req.params["imagePipelineArn"])
        return {"imagePipelineArn": req.params["imagePipelineArn"]}

    def _lifecycle_fields(self, req: Request) -> Record:
        p = req.params
        own = {collection: req.own(collection) for collection in ("imageRecipes", "containerRecipes")}
        service_rules.check_lifecycle_selection(p["resourceType"], p["resourceSelection"], own)
        return {
            "description": p.get("description"),
            "status": p.get("status", "ENABLED"),
            "executionRole": p["executionRole"],
            "resourceType": p["resourceType"],
            "policyDetails": p["policyDetails"],
            "resourceSelection": p["resourceSelection"],
        }

    def op_create_lifecycle_policy(self, req: Request) -> Record:
        return {
            "lifecyclePolicyArn": self._create_mutable(req, "lifecyclePolicies", self._lifecycle_fields(req))
        }

    def op_update_lifecycle_policy(self, req: Request) -> Record:
        fields = self._lifecycle_fields(req)
        return {"lifecyclePolicyArn": self._update_mutable(req, "lifecyclePolicies", "lifecyclePolicyArn", fields)}

    def op_get_lifecycle_policy(self, req: Request) -> Record:
        return {"lifecyclePolicy": self._get(req, "lifecyclePolicies", req.params["lifecyclePolicyArn"])}

    def op_list_lifecycle_policies(self, req: Request) -> Record:
        page, token = paginate(
            req.operation,
            req.params,
            self._listing(req, "lifecyclePolicies", None, "sorted", by_name_and_version),
            {
                "name": lambda r: r["name"],
                "status": lambda r: r["status"],
            },
        )
        return {"lifecyclePolicySummaryList": page, "nextToken": token}

    def op_delete_lifecycle_policy(self, req: Request) -> Record:
        self._delete(req, "lifecyclePolicies", req.params["lifecyclePolicyArn"])
        return {"lifecyclePolicyArn": req.params["lifecyclePolicyArn"]}

    # Images, builds, pipeline runs and schedules are in `builds.BuildOperations`.

    # --- tags and resource policies -------------------------------------------------------------

    def _tag_target(self, req: Request, arn: str) -> Record:
        ref = parse_arn(arn, "resourceArn")
        if ref.account != req.account:
            raise SandboxError("InvalidParameterException", f"You can only tag resources your account owns: '{arn}'.")
        for collection in RESOURCE_COLLECTIONS:
            record = req.table(collection).get(arn) if arn.startswith(req.prefix) else None
            if record is not None:
                return record
        raise SandboxError("ResourceNotFoundException", f"The resource '{arn}' does not exist.")

    def op_tag_resource(self, req: Request) -> Record:
        record = self._tag_target(req, req.params["resourceArn"])
        merged = {**(record.get("tags") or {}), **req.params["tags"]}
        if len(merged) > 50:
            raise SandboxError("InvalidParameterException", "A resource can have at most 50 tags.")
        record["tags"] = merged
        return {}

    def op_untag_resource(self, req: Request) -> Record:
        record = self._tag_target(req, req.params["resourceArn"])
        record["tags"] = {k: v for k, v in (record.get("tags") or {}).items() if k not in req.params["tagKeys"]}
        return {}

    def op_list_tags_for_resource(self, req: Request) -> Record:
        return {"tags": self._tag_target(req, req.params["resourceArn"]).get("tags") or {}}

    def _policy_target(self, req: Request, collection: str, arn: str) -> Record:
        # Only the owner reads or sets a resource's policy: a resource shared with the caller is
        # forbidden to it (it cannot reshare what was shared with it), anyone else's is not found.
        here = f":imagebuilder:{req.region}:" in arn
        if here and not arn.startswith(req.prefix) and any(
            sharing.granted(req.state, collection, arn, req.account, verb) for verb in (sharing.GET, sharing.LIST)
        ):
            raise SandboxError(
                "ForbiddenException",
                f"You are not authorized to perform this operation: '{arn}' is owned by another account, "
                "and only its owner can read or change its policy.",
            )
        return self._get(req, collection, arn)

    def _put_policy(self, req: Request, collection: str, member: str) -> Record:
        arn = req.params[member]
        self._policy_target(req, collection, arn)
        sharing.check_policy(req.params["policy"], collection, arn)
        # A new policy replaces the old one whole: accounts it no longer names lose access.
        req.state["policies"][arn] = req.params["policy"]
        return {member: arn}

    def _get_policy(self, req: Request, collection: str, member: str) -> Record:
        arn = req.params[member]
        self._policy_target(req, collection, arn)
        return {"policy": req.state["policies"].get(arn)}

    def op_put_component_policy(self, req: Request) -> Record:
        return self._put_policy(req, "components", "componentArn")

    def op_get_component_policy(self, req: Request) -> Record:
        return self._get_policy(req, "components", "componentArn")

    def op_put_image_recipe_policy(self, req: Request) -> Record:
        return self._put_policy(req, "imageRecipes", "imageRecipeArn")

    def op_get_image_recipe_policy(self, req: Request) -> Record:
        return self._get_policy(req, "imageRecipes", "imageRecipeArn")

    def op_put_container_recipe_policy(self, req: Request) -> Record:
        return self._put_policy(req, "containerRecipes", "containerRecipeArn")

    def op_get_container_recipe_policy(self, req: Request) -> Record:
        return self._get_policy(req, "containerRecipes", "containerRecipeArn")

    def op_put_image_policy(self, req: Request) -> Record:
        return self._put_policy(req, "images", "imageArn")

    def op_get_image_policy(self, req: Request) -> Record:
        return self._get_policy(req, "images", "imageArn")


def _latest(by_name: bool) -> Callable[[list[Record]], list[Record]]:
    """A List of versions' rows: the newest build per version, or per name with `byName`."""
    if by_name:
        return lambda pool: latest_per_name(latest_per_version(pool))
    return latest_per_version


def _member(name: str) -> Callable[[Record], Any]:
    """A filter's getter: the record's member `name`."""
    return lambda record: record.get(name)
