"""Images and their builds over the sandbox clock; pipeline runs and schedules that fire.

`BuildOperations` holds the image operations (StartImagePipelineExecution, CreateImage, GetImage,
ListImages, ListImageBuildVersions, ListImagePipelineImages, DeleteImage, CancelImageCreation,
StartResourceStateUpdate and the workflow-execution reads); `Backend` inherits them, and `Core`
runs `tick_builds` and `tick_schedules` before every call so that what a call sees is what the
sandbox clock implies.

A build goes PENDING -> BUILDING -> TESTING -> DISTRIBUTING -> AVAILABLE over
`settings.build_minutes` simulated minutes (5 % pending, then building, testing and distributing;
TESTING only when image tests are enabled and the recipe has a component with a test phase or a
TEST workflow is given). A fraction `settings.build_failure_rate` of builds, drawn from
`settings.seed` and the image ARN, ends FAILED at the end of BUILDING.

Where the service's behaviour is undocumented the sandbox picks one reading and says so here:
- CancelImageCreation of an image that already finished is `ResourceInUseException`;
- DeleteImage of an image that is still building deletes it (its build stops);
- an AMI is made per distribution region and per `targetAccountIds` account (the owner's account
  when none is given); the default AMI name is `RECIPE-NAME BUILD-DATE`;
- the dependency-update start condition compares what the pipeline's newest image that did not fail
  or get cancelled was built from (recipe, parent image build, component builds) with what the
  recipe resolves to now; a parent image resolves to the newest AVAILABLE build;
- StartResourceStateUpdate applies its state at once (or at `updateAt`, when that is later, on the
  next call after it);
- a schedule's missed fire times are processed in order, at most `MAX_FIRES_PER_TICK` per
  pipeline per call; `dateNextRun` then names the next one still to process.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable
from typing import Any

from imagesync.sandbox import schedules, service_rules
from imagesync.sandbox.core import (
    Core,
    Record,
    Request,
    build_of,
    iso,
    latest_per_name,
    latest_per_version,
    latest_references,
    matches,
    paginate,
    parse_arn,
    parse_version,
    version_arn_of,
    version_key,
)
from imagesync.sandbox.documents import load_stored
from imagesync.sandbox.errors import SandboxError
from imagesync.sandbox.store import TOUCHED

MAX_FIRES_PER_TICK = 100
PENDING_SHARE = 0.05
FINISHED = ("AVAILABLE", "FAILED", "CANCELLED")
# Statuses an image reaches after its build, through lifecycle actions.
MANAGED = ("DEPRECATED", "DISABLED", "DELETED")
DEPENDENCY_UPDATES = "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE"
FAILURE_REASON = (
    "Image build failed: a component step exited with a non-zero status during the build phase "
    "(failure injected by the sandbox)."
)
_VARIABLE_RE = re.compile(r"\{\{\s*imagebuilder:(?P<name>[A-Za-z]+)\s*\}\}")

# The steps of the default build and test workflows, as (name, action).
# An image with scanning enabled is scanned while it is tested and distributed; the findings are in
# once it is AVAILABLE, and a build that stops early abandons its scan.
SCAN_STATE = {"TESTING": "SCANNING", "DISTRIBUTING": "COLLECTING", "AVAILABLE": "COMPLETED", "FAILED": "ABANDONED"}

DEFAULT_STEPS = {
    "BUILD": [
        ("LaunchBuildInstance", "LaunchInstance"),
        ("ApplyBuildComponents", "ExecuteComponents"),
        ("InventoryCollection", "CollectImageMetadata"),
        ("RunSanitizeScript", "SanitizeInstance"),
        ("CreateOutputAMI", "CreateImage"),
        ("TerminateBuildInstance", "TerminateInstance"),
    ],
    "TEST": [
        ("LaunchTestInstance", "LaunchInstance"),
        ("CollectImageMetadata", "CollectImageMetadata"),
        ("RunTestSuite", "ExecuteComponents"),
        ("TerminateTestInstance", "TerminateInstance"),
    ],
}
DEFAULT_WORKFLOW = {"BUILD": "build-image", "TEST": "test-image"}
PHASE_OF = {"BUILD": "BUILDING", "TEST": "TESTING", "DISTRIBUTION": "DISTRIBUTING"}


def _epoch(moment: dt.datetime) -> float:
    return moment.timestamp()


def _moment(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _parse_iso(text: str) -> dt.datetime:
    """An ISO 8601 timestamp; one without a zone is UTC (the service's zone), never the host's."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def build_date(moment: dt.datetime) -> str:
    """`{{imagebuilder:buildDate}}`: the build's start in UTC, with the colons an AMI name cannot hold as hyphens."""
    return iso(moment).replace(":", "-")


def expand(template: str, values: dict[str, str]) -> str:
    """Replace `{{imagebuilder:NAME}}` (spaces inside the braces allowed) with its value; unknown names stay."""
    return _VARIABLE_RE.sub(lambda m: values.get(m["name"], m[0]), template)


def _timestamp(value: Any, default: float) -> float:
    """An input timestamp as epoch seconds, however the protocol layer handed it over."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return _parse_iso(value).timestamp()
    return default


def _steps_of(workflow: Record | None) -> list[Record]:
    """The steps of a workflow record's document as a step execution reports them: name, action,
    description, inputs (as JSON text), onFailure (the document's default, Abort) and timeoutSeconds."""
    doc = load_stored((workflow or {}).get("data"))
    steps = doc.get("steps") if isinstance(doc, dict) else None
    out = []
    for step in steps or []:
        if not isinstance(step, dict):
            continue
        row: Record = {
            "name": str(step.get("name", "Step")),
            "action": str(step.get("action", "ExecuteComponents")),
            "inputs": json.dumps(step.get("inputs") or {}, sort_keys=True, default=str),
            "onFailure": str(step.get("onFailure", "Abort")),
        }
        if step.get("description"):
            row["description"] = str(step["description"])
        if isinstance(step.get("timeoutSeconds"), int):
            row["timeoutSeconds"] = step["timeoutSeconds"]
        out.append(row)
    return out


def _step_outputs(action: str, execution_id: str) -> str:
    """What a completed step reports: the instance a LaunchInstance started, the AMI a CreateImage made."""
    seed = hashlib.sha256(execution_id.encode()).hexdigest()
    outputs = {"LaunchInstance": {"instanceId": f"i-{seed[:17]}"}, "CreateImage": {"imageId": f"ami-{seed[:17]}"}}
    return json.dumps(outputs.get(action, {}), sort_keys=True)


def _uuid(*parts: str) -> str:
    return str(uuid.UUID(hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]))


class BuildOperations(Core):
    """Image builds, pipeline runs and schedules."""

    # --- starting a build -----------------------------------------------------------------------

    def _recipe_for(self, req: Request, source: Record) -> tuple[Record, str, str]:
        if source.get("imageRecipeArn"):
            recipe = self._must_resolve(req, "imageRecipes", source["imageRecipeArn"], "imageRecipeArn")
            return recipe, "imageRecipe", "AMI"
        recipe = self._must_resolve(req, "containerRecipes", source["containerRecipeArn"], "containerRecipeArn")
        return recipe, "containerRecipe", "DOCKER"

    def _resolved_inputs(self, req: Request, recipe: Record) -> Record:
        """What a build of `recipe` would use now: the recipe, its parent image build, its component builds."""
        components = []
        for comp in recipe.get("components") or []:
            hit = self._resolve_quiet(req, "components", comp["componentArn"])
            components.append(hit["arn"] if hit else comp["componentArn"])
        return {
            "recipe": recipe["arn"],
            "parent": self._parent_build(req, recipe["parentImage"]),
            "components": components,
        }

    def _parent_build(self, req: Request, parent: str) -> str:
        if not parent.startswith("arn:"):
            return parent
        try:
            ref = parse_arn(service_rules.parent_image_arn(parent), "parentImage")
            pattern = parse_version(ref.version, wildcards=True) if ref.version else None
        except SandboxError:
            return parent
        # What the caller may see: its region, and another account's images only where shared.
        family = self._visible_versions(req, "images", ref)
        ready = [
            r
            for r in family
            if r["state"]["status"] == "AVAILABLE"
            and (pattern is None or matches(pattern, version_key(r["version"])))
            and (ref.build is None or build_of(r) == ref.build)
        ]
        if not ready:
            return parent
        return max(ready, key=lambda r: (version_key(r["version"]), build_of(r)))["arn"]

    def _has_tests(self, req: Request, recipe: Record) -> bool:
        for comp in recipe.get("components") or []:
            hit = self._resolve_quiet(req, "components", comp["componentArn"])
            if hit is None:
                continue
            if hit.get("type") == "TEST":
                return True
            doc = load_stored(hit.get("data"))
            phases = doc.get("phases") if isinstance(doc, dict) else None
            if any(isinstance(ph, dict) and ph.get("name") == "test" for ph in phases or []):
                return True
        return False

    def _workflow_plan(self, req: Request, source: Record, tests_enabled: bool, recipe: Record) -> list[Record]:
        """The workflow executions a build runs: the given workflows, or the default build and test ones.

        Tests run when they are enabled and there is something to test: a TEST workflow, or a recipe
        component with a test phase.
        """
        plan: list[Record] = []
        for wf in source.get("workflows") or []:
            record = self._resolve_quiet(req, "workflows", wf["workflowArn"])
            arn = record["arn"] if record else wf["workflowArn"]
            type_ = record["type"] if record else parse_arn(wf["workflowArn"], "workflowArn").type.split("/")[1].upper()
            steps = _steps_of(record)
            plan.append({"arn": arn, "type": type_, "steps": steps, "parallelGroup": wf.get("parallelGroup")})
        tests = tests_enabled and (any(p["type"] == "TEST" for p in plan) or self._has_tests(req, recipe))
        if not any(p["type"] == "BUILD" for p in plan):
            plan.insert(0, self._default_workflow(req, "BUILD"))
        if tests and not any(p["type"] == "TEST" for p in plan):
            plan.append(self._default_workflow(req, "TEST"))
        if not tests:
            plan = [p for p in plan if p["type"] != "TEST"]
        return plan

    def _default_workflow(self, req: Request, type_: str) -> Record:
        """The AWS-managed build or test workflow: the catalog's newest, if it has one, else a built-in outline."""
        base = f"arn:{req.prefix.split(':')[1]}:imagebuilder:{req.region}:aws:workflow/{type_.lower()}/"
        record = self._resolve_quiet(req, "workflows", f"{base}{DEFAULT_WORKFLOW[type_]}/x.x.x")
        steps = _steps_of(record) or [
            {"name": n, "action": a, "inputs": "{}", "onFailure": "Abort"} for n, a in DEFAULT_STEPS[type_]
        ]
        arn = record["arn"] if record else f"{base}{DEFAULT_WORKFLOW[type_]}/1.0.0/1"
        return {"arn": arn, "type": type_, "steps": steps, "parallelGroup": None}

    def _start_build(
        self, req: Request, source: Record, *, pipeline: Record | None, build_type: str, tags: Record
    ) -> str:
        """Create an image build from a pipeline or a CreateImage request; it progresses on the clock."""
        recipe, recipe_key, image_type = self._recipe_for(req, source)
        base = req.arn("images", recipe["name"], recipe["version"])
        # The last build number per image version, kept so that a build costs no scan of every image
        # (and a deleted build's number is not given out again).
        last = req.state.get("imageBuilds", {}).get(base)
        if last is None:
            builds = (build_of(r) for r in req.table("images").builds(base))
            last = max(builds, default=0)
        build = last + 1
        arn = f"{base}/{build}"
        distribution = req.table("distributionConfigurations").get(source.get("distributionConfigurationArn") or "")
        tests_config = dict(source.get("imageTestsConfiguration") or {})
        tests_config.setdefault("imageTestsEnabled", True)
        tests_config.setdefault("timeoutMinutes", 720)
        workflows = self._workflow_plan(req, source, bool(tests_config["imageTestsEnabled"]), recipe)
        tests = any(p["type"] == "TEST" for p in workflows)
        start = _epoch(req.now)
        total = self.settings.build_minutes * 60.0
        shares = [("PENDING", PENDING_SHARE), ("BUILDING", 0.5 if tests else 0.7)]
        if tests:
            shares.append(("TESTING", 0.25))
        shares.append(("DISTRIBUTING", 1.0 - sum(s for _, s in shares)))
        phases, end = [], start
        for status, share in shares:
            end += total * share
            phases.append([status, end])
        draw = random.Random(f"{self.settings.seed}|{arn}").random()
        fails = draw < self.settings.build_failure_rate
        resolved = self._resolved_inputs(req, recipe)
        image: Record = {
            "arn": arn,
            "type": image_type,
            "name": recipe["name"],
            "version": f"{recipe['version']}/{build}",
            "platform": recipe["platform"],
            "enhancedImageMetadataEnabled": source.get("enhancedImageMetadataEnabled", True),
            "osVersion": recipe.get("_osVersion"),
            "state": {"status": "PENDING"},
            # The image's copy of its recipe names the parent image build it was built from, as GetImage
            # shows it (AWS CLI example get-image.rst), while the recipe keeps its wildcard.
            recipe_key: dict(copy.deepcopy(recipe), parentImage=resolved["parent"]),
            "infrastructureConfiguration": copy.deepcopy(
                req.table("infrastructureConfigurations").get(source["infrastructureConfigurationArn"])
            ),
            "distributionConfiguration": copy.deepcopy(distribution),
            "imageTestsConfiguration": tests_config,
            "dateCreated": req.timestamp(),
            "tags": {**(source.get("imageTags") or {}), **tags},
            "owner": req.account,
            "buildType": build_type,
            "imageSource": "CUSTOM",
            "imageScanningConfiguration": source.get("imageScanningConfiguration"),
            "executionRole": source.get("executionRole"),
            "workflows": copy.deepcopy(source.get("workflows")),
            # A pipeline's imageLogGroupName is the image's logGroupName; CreateImage gives logGroupName itself.
            "loggingConfiguration": _image_logging(source.get("loggingConfiguration")),
            "_build": {"start": start, "phases": phases, "fails": fails},
            "_resolved": resolved,
            "_workflowPlan": [dict(p, id=f"wf-{_uuid(arn, str(i))}") for i, p in enumerate(workflows)],
        }
        if (source.get("imageScanningConfiguration") or {}).get("imageScanningEnabled"):
            image["scanState"] = {"status": "PENDING"}
        if pipeline is not None:
            image["sourcePipelineName"] = pipeline["name"]
            image["sourcePipelineArn"] = pipeline["arn"]
            pipeline["_lastImage"] = arn
            pipeline["dateLastRun"] = req.timestamp()
            pipeline["lastRunStatus"] = "PENDING"
        req.table("images")[arn] = image
        req.state.setdefault("imageBuilds", {})[base] = build
        self._advance(req.state, image, req.now)
        return arn

    # --- progress on the clock ------------------------------------------------------------------

    def tick_builds(self, req: Request) -> float | None:
        """Move every unfinished build to the status the clock implies. With none left to move,
        nothing is due until the state changes (infinity); otherwise every call looks again."""
        changed = False
        waiting = False
        for image in list(req.state["resources"].get("images", {}).values()):
            if "_build" in image and image["state"]["status"] not in FINISHED + MANAGED:
                changed = self._advance(req.state, image, req.now) or changed
                waiting = waiting or image["state"]["status"] not in FINISHED + MANAGED
            pending = image.get("_stateUpdate")
            if pending and pending["at"] <= _epoch(req.now):
                self._set_state(req.state, image, pending["status"])
                changed = True
            waiting = waiting or bool(image.get("_stateUpdate"))
        if changed:
            req.state[TOUCHED] = True
        return None if waiting else math.inf

    def _status_at(self, image: Record, when: float) -> str:
        build = image["_build"]
        for status, end in build["phases"]:
            if when < end:
                return status
            if status == "BUILDING" and build["fails"]:
                return "FAILED"
        return "FAILED" if build["fails"] else "AVAILABLE"

    def _advance(self, state: dict[str, Any], image: Record, now: dt.datetime) -> bool:
        status = self._status_at(image, _epoch(now))
        if status == image["state"]["status"]:
            return False
        image["state"] = {"status": status}
        if "scanState" in image:
            image["scanState"] = {"status": SCAN_STATE.get(status, "PENDING")}
        if status == "FAILED":
            image["state"]["reason"] = FAILURE_REASON
            image["_build"]["end"] = self._phase_end(image, "BUILDING")
        elif status == "AVAILABLE":
            image["outputResources"] = self._outputs(image)
            image["_build"]["end"] = image["_build"]["phases"][-1][1]
        self._pipeline_follows(state, image)
        return True

    def _phase_end(self, image: Record, phase: str) -> float:
        return next(end for status, end in image["_build"]["phases"] if status == phase)

    def _pipeline_follows(self, state: dict[str, Any], image: Record) -> None:
        """The pipeline's run fields track its newest image; a finished build settles the failure count."""
        pipeline = state["resources"].get("imagePipelines", {}).get(image.get("sourcePipelineArn") or "")
        if pipeline is None or pipeline.get("_lastImage") != image["arn"]:
            return
        status = image["state"]["status"]
        pipeline["lastRunStatus"] = status
        if status == "AVAILABLE":
            pipeline["consecutiveFailures"] = 0
        elif status == "FAILED" and image["buildType"] == "SCHEDULED":
            # Only scheduled runs count; a manual run that fails leaves the count as it is.
            pipeline["consecutiveFailures"] = pipeline.get("consecutiveFailures", 0) + 1
            limit = ((pipeline.get("schedule") or {}).get("autoDisablePolicy") or {}).get("failureCount")
            if limit and pipeline["consecutiveFailures"] >= limit:
                pipeline["status"] = "DISABLED"

    def _outputs(self, image: Record) -> Record:
        arn = image["arn"]
        ref = parse_arn(arn, "imageBuildVersionArn")
        distribution = image.get("distributionConfiguration")
        recipe = image.get("imageRecipe") or image.get("containerRecipe") or {}
        values = {
            "buildDate": build_date(_moment(image["_build"]["start"])),
            "buildVersion": str(build_of(image)),
        }
        targets: list[Record] = distribution["distributions"] if distribution else [{"region": ref.region}]
        if image["type"] == "DOCKER":
            containers = []
            for d in targets:
                cdc = d.get("containerDistributionConfiguration") or {}
                repo = (cdc.get("targetRepository") or recipe.get("targetRepository") or {}).get("repositoryName")
                tags = [expand(t, values) for t in cdc.get("containerTags") or []] or [
                    f"{recipe['version']}-{build_of(image)}"
                ]
                host = f"{ref.account}.dkr.ecr.{d['region']}.amazonaws.com"
                containers.append({"region": d["region"], "imageUris": [f"{host}/{repo}:{t}" for t in tags]})
            return {"containers": containers}
        amis, ami_tags = [], {}
        for d in targets:
            adc = d.get("amiDistributionConfiguration") or {}
            name = expand(adc["name"], values) if adc.get("name") else f"{image['name']} {values['buildDate']}"
            for account in adc.get("targetAccountIds") or [ref.account]:
                ami_id = "ami-" + hashlib.sha256(f"{arn}|{d['region']}|{account}".encode()).hexdigest()[:17]
                ami: Record = {
                    "region": d["region"],
                    "image": ami_id,
                    "name": name,
                    "state": {"status": "AVAILABLE"},
                    "accountId": account,
                }
                # The recipe's description applies only in the build region and account.
                description = adc.get("description") or (
                    recipe.get("description") if (d["region"], account) == (ref.region, ref.account) else None
                )
                if description:
                    ami["description"] = description
                amis.append(ami)
                ami_tags[ami_id] = {**(recipe.get("amiTags") or {}), **(adc.get("amiTags") or {})}
        image["_amiTags"] = ami_tags
        return {"amis": amis}

    # --- schedules ------------------------------------------------------------------------------

    def _pipeline_run_fields(self, req: Request, schedule: Record | None) -> Record:
        """The run fields of a pipeline being created or updated (CreateImagePipeline, UpdateImagePipeline).

        An update keeps the last run's date and status and resets the failure count, as documented;
        `dateNextRun` is computed afresh from the schedule and the clock.
        """
        before = req.table("imagePipelines").get(req.params.get("imagePipelineArn") or "") or {}
        fields: Record = {"consecutiveFailures": 0, "_scheduleAnchor": req.timestamp()}
        for key in ("dateLastRun", "lastRunStatus"):
            if key in before:
                fields[key] = before[key]
        if schedule and schedule.get("scheduleExpression"):
            following = schedules.next_fire(
                schedule["scheduleExpression"], schedule.get("timezone") or "UTC", req.now, anchor=req.now
            )
            if following is not None:
                fields["dateNextRun"] = iso(following)
        return fields

    def tick_schedules(self, req: Request) -> float:
        """Fire every ENABLED pipeline whose `dateNextRun` has passed, in order, up to the cap.
        Returns the earliest `dateNextRun` left: nothing fires before it."""
        changed = False
        due = math.inf
        for pipeline in list(req.state["resources"].get("imagePipelines", {}).values()):
            schedule = pipeline.get("schedule") or {}
            if not pipeline.get("dateNextRun") or not schedule.get("scheduleExpression"):
                continue
            fires = 0
            while pipeline.get("dateNextRun") and pipeline.get("status") == "ENABLED" and fires < MAX_FIRES_PER_TICK:
                when = _parse_iso(pipeline["dateNextRun"])
                if when > req.now:
                    break
                fires += 1
                changed = True
                try:
                    self._fire(req, pipeline, when)
                except (SandboxError, ValueError, KeyError, TypeError, RecursionError):
                    # What a scheduled run cannot start from is that run's failure, never every
                    # later call's: the schedule moves on to its next fire time.
                    pass
                following = schedules.next_fire(
                    schedule["scheduleExpression"],
                    schedule.get("timezone") or "UTC",
                    when,
                    anchor=_parse_iso(pipeline.get("_scheduleAnchor") or pipeline["dateCreated"]),
                )
                pipeline["dateNextRun"] = iso(following) if following else None
                if not pipeline["dateNextRun"]:
                    pipeline.pop("dateNextRun")
            if pipeline.get("dateNextRun") and pipeline.get("status") == "ENABLED":
                due = min(due, _epoch(_parse_iso(pipeline["dateNextRun"])))
        if changed:
            req.state[TOUCHED] = True
        return due

    def _fire(self, req: Request, pipeline: Record, when: dt.datetime) -> None:
        ref = parse_arn(pipeline["arn"], "imagePipelineArn")
        sub = Request(req.state, ref.region, "StartImagePipelineExecution", {}, ref.account)
        sub.now = when
        try:
            recipe, _, _ = self._recipe_for(sub, pipeline)
        except SandboxError:
            return  # the recipe is gone: nothing to build
        condition = (pipeline.get("schedule") or {}).get("pipelineExecutionStartCondition") or DEPENDENCY_UPDATES
        if condition == DEPENDENCY_UPDATES:
            built = self._last_good_inputs(sub, pipeline)
            if built is not None and built == self._resolved_inputs(sub, recipe):
                return
        self._start_build(sub, pipeline, pipeline=pipeline, build_type="SCHEDULED", tags={})
        image = sub.table("images")[pipeline["_lastImage"]]
        self._advance(req.state, image, req.now)

    def _last_good_inputs(self, req: Request, pipeline: Record) -> Record | None:
        built = [
            r
            for r in req.table("images").values()
            if r.get("sourcePipelineArn") == pipeline["arn"] and r["state"]["status"] not in ("FAILED", "CANCELLED")
        ]
        if not built:
            return None
        return max(built, key=lambda r: r["_build"]["start"] if "_build" in r else 0).get("_resolved")

    # --- image operations -----------------------------------------------------------------------

    def op_start_image_pipeline_execution(self, req: Request) -> Record:
        pipeline = self._get(req, "imagePipelines", req.params["imagePipelineArn"])
        arn = self._start_build(
            req, pipeline, pipeline=pipeline, build_type="USER_INITIATED", tags=dict(req.params.get("tags") or {})
        )
        return {"imageBuildVersionArn": arn}

    def op_create_image(self, req: Request) -> Record:
        p = req.params
        self._check_build_inputs(req)
        source = {k: v for k, v in p.items() if k not in ("tags", "clientToken")}
        arn = self._start_build(req, source, pipeline=None, build_type="USER_INITIATED", tags=dict(p.get("tags") or {}))
        record = req.table("images")[arn]
        base = arn.rsplit("/", 2)[0]
        return {"imageBuildVersionArn": arn, "latestVersionReferences": latest_references(base, record["version"])}

    def op_cancel_image_creation(self, req: Request) -> Record:
        arn = req.params["imageBuildVersionArn"]
        image = self._get(req, "images", arn)
        status = image["state"]["status"]
        if status in FINISHED + MANAGED or "_build" not in image:
            raise SandboxError(
                "ResourceInUseException",
                f"The image '{arn}' cannot be cancelled: its creation already ended with status {status}.",
            )
        image["state"] = {"status": "CANCELLED", "reason": "The image creation was cancelled by a user request."}
        if "scanState" in image:
            image["scanState"] = {"status": "ABANDONED"}
        image["_build"]["end"] = _epoch(req.now)
        image["_build"]["cancelled"] = _epoch(req.now)
        self._pipeline_follows(req.state, image)
        return {"imageBuildVersionArn": arn}

    def op_start_resource_state_update(self, req: Request) -> Record:
        arn = req.params["resourceArn"]
        image = self._get(req, "images", arn)
        if image["state"]["status"] not in ("AVAILABLE",) + MANAGED:
            raise SandboxError(
                "ResourceInUseException",
                f"The image '{arn}' is in status {image['state']['status']}; only a finished, available image "
                "changes state.",
            )
        wanted = req.params["state"].get("status")
        if wanted is None:
            raise SandboxError(
                "InvalidParameterValueException",
                "The value supplied for parameter 'state.status' is not valid. A state update needs the status to set.",
            )
        when = _timestamp(req.params.get("updateAt"), _epoch(req.now))
        execution = f"lce-{_uuid(arn, req.timestamp(), wanted)}"
        image["lifecycleExecutionId"] = execution
        if when > _epoch(req.now):
            image["_stateUpdate"] = {"status": wanted, "at": when}
        else:
            self._set_state(req.state, image, wanted)
        return {"lifecycleExecutionId": execution, "resourceArn": arn}

    def _set_state(self, state: dict[str, Any], image: Record, status: str) -> None:
        """A lifecycle state: DELETED removes the image resource, the others set its status."""
        image.pop("_stateUpdate", None)
        if status == "DELETED":
            state["resources"]["images"].pop(image["arn"], None)
            state["policies"].pop(image["arn"], None)
        else:
            image["state"] = {"status": status}

    def op_get_image(self, req: Request) -> Record:
        arn = req.params["imageBuildVersionArn"]
        record = self._resolve(req, "images", arn, "imageBuildVersionArn")
        if record is None:
            raise SandboxError("ResourceNotFoundException", f"The resource '{arn}' does not exist.")
        base = record["arn"].rsplit("/", 2)[0]
        return {"image": record, "latestVersionReferences": latest_references(base, record["version"])}

    _image_filters: dict[str, Callable[[Record], Any]] = {
        "name": lambda r: r["name"],
        "osVersion": lambda r: r.get("osVersion"),
        "platform": lambda r: r.get("platform"),
        "type": lambda r: r.get("type"),
        "version": lambda r: r["version"].split("/")[0],
    }

    def op_list_images(self, req: Request) -> Record:
        p = req.params
        if p.get("byName") and any(f.get("name") == "version" for f in p.get("filters") or []):
            raise SandboxError(
                "InvalidParameterCombinationException",
                "The value supplied for parameter 'filters' is not valid. You cannot list Images by name and "
                "filter by version in the same request.",
            )
        pool = self._owned_list(req, "images", p.get("owner"))
        if not p.get("includeDeprecated"):
            pool = [r for r in pool if r["state"]["status"] != "DEPRECATED"]
        rows = latest_per_version(pool)
        if p.get("byName"):
            rows = latest_per_name(rows)
        items = [dict(r, arn=version_arn_of(r["arn"]), version=r["version"].split("/")[0]) for r in rows]
        page, token = paginate(req.operation, p, items, self._image_filters)
        return {"imageVersionList": page, "nextToken": token}

    def op_list_image_build_versions(self, req: Request) -> Record:
        version_arn = req.params["imageVersionArn"]
        pool = self._family_builds(req, "images", version_arn, "imageVersionArn")
        page, token = paginate(req.operation, req.params, pool, self._image_filters)
        return {"imageSummaryList": page, "nextToken": token}

    def op_list_image_pipeline_images(self, req: Request) -> Record:
        pipeline = self._get(req, "imagePipelines", req.params["imagePipelineArn"])
        pool = sorted(
            (r for r in req.own("images") if r.get("sourcePipelineArn") == pipeline["arn"]),
            key=lambda r: (version_key(r["version"]), build_of(r)),
        )
        filters = {"name": self._image_filters["name"], "version": self._image_filters["version"]}
        page, token = paginate(req.operation, req.params, pool, filters)
        return {"imageSummaryList": page, "nextToken": token}

    def op_delete_image(self, req: Request) -> Record:
        self._delete(req, "images", req.params["imageBuildVersionArn"])
        return {"imageBuildVersionArn": req.params["imageBuildVersionArn"]}

    # --- workflow executions --------------------------------------------------------------------

    def _executions(self, image: Record, now: float) -> list[Record]:
        """Workflow executions of a build with their steps, as the image's progress implies at `now`."""
        build = image.get("_build")
        if build is None:
            return []
        status = image["state"]["status"]
        end = build.get("end")
        cut = min(now, end) if end is not None else now
        phase_windows: dict[str, tuple[float, float]] = {}
        begin = build["start"]
        for phase, phase_end in build["phases"]:
            phase_windows[phase] = (begin, phase_end)
            begin = phase_end
        out = []
        for plan in image.get("_workflowPlan") or []:
            window = phase_windows.get(PHASE_OF[plan["type"]])
            if window is None or window[0] > cut or (window[0] == cut and status in ("FAILED", "CANCELLED")):
                continue
            steps = plan["steps"] or [{"name": "Run", "action": "ExecuteComponents", "inputs": "{}"}]
            span = (window[1] - window[0]) / len(steps)
            rows = []
            for i, step in enumerate(steps):
                s_start, s_end = window[0] + i * span, window[0] + (i + 1) * span
                if status == "FAILED" and plan["type"] == "BUILD" and i == len(steps) - 1:
                    step_status = "FAILED"  # the build fails at its last step
                elif s_end <= cut:
                    step_status = "COMPLETED"
                elif s_start <= cut:
                    step_status = {"FAILED": "FAILED", "CANCELLED": "CANCELLED"}.get(status, "RUNNING")
                else:
                    step_status = "SKIPPED" if status in ("FAILED", "CANCELLED") else "PENDING"
                step_id = f"step-{_uuid(plan['id'], str(i))}"
                row: Record = {
                    **step,
                    "stepExecutionId": step_id,
                    "status": step_status,
                    "startTime": iso(_moment(s_start)) if s_start <= cut else None,
                    "endTime": iso(_moment(min(s_end, cut)))
                    if step_status in ("COMPLETED", "FAILED", "CANCELLED")
                    else None,
                }
                if step_status == "COMPLETED":
                    row["outputs"] = _step_outputs(step["action"], step_id)
                if step_status == "FAILED":
                    row["message"] = FAILURE_REASON
                rows.append(row)
            states = [r["status"] for r in rows]
            if "FAILED" in states:
                wf_status = "FAILED"
            elif "CANCELLED" in states:
                wf_status = "CANCELLED"
            elif all(s == "COMPLETED" for s in states):
                wf_status = "COMPLETED"
            else:
                wf_status = "RUNNING"
            out.append(
                {
                    "workflowBuildVersionArn": plan["arn"],
                    "workflowExecutionId": plan["id"],
                    "imageBuildVersionArn": image["arn"],
                    "type": plan["type"],
                    "status": wf_status,
                    "totalStepCount": len(rows),
                    "totalStepsSucceeded": states.count("COMPLETED"),
                    "totalStepsFailed": states.count("FAILED"),
                    "totalStepsSkipped": states.count("SKIPPED"),
                    "startTime": iso(_moment(window[0])),
                    "endTime": iso(_moment(min(window[1], cut))) if wf_status != "RUNNING" else None,
                    "parallelGroup": plan.get("parallelGroup"),
                    "_steps": rows,
                }
            )
        return out

    def _find_execution(self, req: Request, execution_id: str) -> Record:
        for image in req.own("images"):
            for execution in self._executions(image, _epoch(req.now)):
                if execution["workflowExecutionId"] == execution_id:
                    return execution
        raise SandboxError("ResourceNotFoundException", f"The workflow execution '{execution_id}' does not exist.")

    def op_list_workflow_executions(self, req: Request) -> Record:
        arn = req.params["imageBuildVersionArn"]
        image = self._get(req, "images", arn)
        rows = [{k: v for k, v in e.items() if k != "_steps"} for e in self._executions(image, _epoch(req.now))]
        page, token = paginate(req.operation, req.params, rows)
        return {"workflowExecutions": page, "imageBuildVersionArn": arn, "nextToken": token}

    def op_get_workflow_execution(self, req: Request) -> Record:
        execution = self._find_execution(req, req.params["workflowExecutionId"])
        return {k: v for k, v in execution.items() if k != "_steps"}

    def op_list_workflow_step_executions(self, req: Request) -> Record:
        execution = self._find_execution(req, req.params["workflowExecutionId"])
        page, token = paginate(req.operation, req.params, execution["_steps"])
        return {
            "steps": page,
            "workflowBuildVersionArn": execution["workflowBuildVersionArn"],
            "workflowExecutionId": execution["workflowExecutionId"],
            "imageBuildVersionArn": execution["imageBuildVersionArn"],
            "nextToken": token,
        }

    def op_get_workflow_step_execution(self, req: Request) -> Record:
        step_id = req.params["stepExecutionId"]
        for image in req.own("images"):
            for execution in self._executions(image, _epoch(req.now)):
                for step in execution["_steps"]:
                    if step["stepExecutionId"] == step_id:
                        return {
                            **step,
                            "workflowBuildVersionArn": execution["workflowBuildVersionArn"],
                            "workflowExecutionId": execution["workflowExecutionId"],
                            "imageBuildVersionArn": execution["imageBuildVersionArn"],
                        }
        raise SandboxError("ResourceNotFoundException", f"The workflow step execution '{step_id}' does not exist.")


def _image_logging(config: Record | None) -> Record | None:
    if not config or "logGroupName" in config or "imageLogGroupName" not in config:
        return config
    return {"logGroupName": config["imageLogGroupName"]}
