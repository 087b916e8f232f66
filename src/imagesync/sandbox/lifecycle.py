"""Lifecycle policies at work: executions that deprecate, disable and delete images by their rules.

`LifecycleOperations` holds the lifecycle-execution operations (GetLifecycleExecution,
ListLifecycleExecutions, ListLifecycleExecutionResources, CancelLifecycleExecution) and the
`tick_lifecycle` hook that `Core.handle` runs before every call; `Backend` inherits them.

How executions run on the sandbox clock (the service runs enabled policies once a day at a time
it picks; the sandbox picks these readings and keeps to them):
- a policy is due one simulated day after it was created, then every simulated day after that;
  a clock that jumped several days replays each missed day as its own execution, in order, so the
  history is what daily runs would have left (at most `MAX_CATCH_UP_DAYS` of them; older missed
  days are skipped). A DISABLED policy's days pass without an execution;
- an execution starts IN_PROGRESS at its day's time, having evaluated the rules then: the images
  it will act on are its resources, IN_PROGRESS too. `EXECUTION_SECONDS` of simulated time later
  it applies the actions and ends SUCCESS. Only one execution per policy runs at a time;
- CancelLifecycleExecution of an IN_PROGRESS execution makes it CANCELLING; the first call after
  the clock has moved on finds it CANCELLED, its resources SKIPPED and nothing applied. An
  execution whose policy was disabled or deleted meanwhile ends CANCELLED the same way;
- the images a policy considers are those of its account and region, of its resource type (AMI or
  container images), selected by `resourceSelection.recipes` (name, and a version where any node
  may be `x`) or by `tagMap` (an image carrying any one of its tags), and in AVAILABLE, DEPRECATED
  or DISABLED state (builds in progress, failed or cancelled are never touched);
- rules apply in `policyDetails` order. Each ranks the considered images newest first: `COUNT`
  marks all but the newest `value`; `AGE` marks those created at least `value` `unit`s ago
  (calendar months and years), sparing the newest `retainAtLeast`. Exclusion rules then spare
  marked images: `tagMap` on the image's tags, `amis` on any of its AMIs (public, distributed to
  one of `regions`, shared with one of `sharedAccounts`, or carrying one of the AMI `tagMap` tags;
  sandbox AMIs are never launched, so `lastLaunched` never spares one). Excluded images still
  count towards what is kept. DEPRECATE acts on AVAILABLE images, DISABLE on AVAILABLE or
  DEPRECATED ones, DELETE on any; an image that several rules act on is one resource with the
  last action;
- DELETE removes the image record; with `includeResources.amis` its AMIs are deregistered (and
  with `snapshots` their snapshots deleted), with `containers` its ECR images are deleted,
  otherwise they are kept, and the resource's reason says which. The distributed resources are
  listed by ListLifecycleExecutionResources with `parentResourceId` set to the image ARN;
- an unknown execution id is ResourceNotFoundException; cancelling an execution that already
  ended is InvalidRequestException.
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import hashlib

from imagesync.sandbox.core import Core, Record, Request, build_of, iso, paginate, version_key
from imagesync.sandbox.errors import SandboxError
from imagesync.sandbox.store import TOUCHED

DAY = dt.timedelta(days=1)
EXECUTION_SECONDS = 300
"""Simulated seconds from an execution's start to its actions being applied."""
MAX_CATCH_UP_DAYS = 400

EXECUTIONS = "lifecycleExecutions"
"""Top-level state key: lifecycle executions by id."""

_USABLE = ("AVAILABLE", "DEPRECATED", "DISABLED")
_ACTS_ON = {"DEPRECATE": ("AVAILABLE",), "DISABLE": ("AVAILABLE", "DEPRECATED"), "DELETE": _USABLE}
_NEW_STATUS = {"DEPRECATE": "DEPRECATED", "DISABLE": "DISABLED"}
_IMAGE_TYPE = {"AMI_IMAGE": "AMI", "CONTAINER_IMAGE": "DOCKER"}
_RUNNING = ("IN_PROGRESS", "CANCELLING", "PENDING")


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _months_before(moment: dt.datetime, months: int) -> dt.datetime:
    """The same day and time `months` calendar months earlier (clamped to the month's last day)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def age_cutoff(now: dt.datetime, value: int, unit: str) -> dt.datetime:
    """The creation time at or before which an image is `value` `unit`s old at `now`."""
    if unit == "WEEKS":
        return now - dt.timedelta(weeks=value)
    if unit == "MONTHS":
        return _months_before(now, value)
    if unit == "YEARS":
        return _months_before(now, 12 * value)
    return now - dt.timedelta(days=value)


def execution_id(policy_arn: str, start: str) -> str:
    """`lce-` and a UUID-shaped hex id, derived from the policy and the start so a replay is stable."""
    h = hashlib.sha256(f"{policy_arn}|{start}".encode()).hexdigest()
    return f"lce-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _snapshot_id(ami: str) -> str:
    return "snap-" + hashlib.sha256(f"snapshot|{ami}".encode()).hexdigest()[:17]


def _version_matches(pattern: str, version: str) -> bool:
    nodes = pattern.split(".")
    got = version.split("/")[0].split(".")
    return len(nodes) == len(got) == 3 and all(p == "x" or p == g for p, g in zip(nodes, got, strict=True))


def _any_tag(tags: dict[str, str] | None, wanted: dict[str, str] | None) -> bool:
    return bool(tags and wanted and any(tags.get(k) == v for k, v in wanted.items()))


class LifecycleOperations(Core):
    """Lifecycle executions over the sandbox clock."""

    # --- the clock ------------------------------------------------------------------------------

    def tick_lifecycle(self, req: Request) -> None:
        """Run every due execution of every policy in the state, then finish what has ended by now."""
        changed = False
        policies = req.state["resources"].get("lifecyclePolicies") or {}
        for arn in sorted(policies):
            changed |= self._lc_catch_up(req, arn, policies[arn])
        changed |= self._lc_finish(req, None, req.now)
        if changed:
            req.state[TOUCHED] = True

    def _lc_catch_up(self, req: Request, arn: str, policy: Record) -> bool:
        changed = False
        if policy.get("dateLastRun") is None and policy.get("_lastRunAt"):
            policy["dateLastRun"] = policy["_lastRunAt"]  # an update replaced the record
            changed = True
        if policy.get("_nextRunAt") is None:
            created = _parse(policy["dateCreated"]) if policy.get("dateCreated") else req.now
            policy["_nextRunAt"] = iso(created + DAY)
            changed = True
        due = _parse(policy["_nextRunAt"])
        if due > req.now:
            return changed
        if req.now - due > MAX_CATCH_UP_DAYS * DAY:
            due += ((req.now - due) // DAY - MAX_CATCH_UP_DAYS) * DAY
        while due <= req.now:
            self._lc_finish(req, arn, due)
            if policy.get("status", "ENABLED") == "ENABLED" and not self._lc_running(req, arn):
                self._lc_start(req, arn, policy, due)
            due += DAY
        policy["_nextRunAt"] = iso(due)
        return True

    def _lc_executions(self, req: Request) -> dict[str, Record]:
        return req.state.get(EXECUTIONS) or {}

    def _lc_running(self, req: Request, policy_arn: str) -> bool:
        return any(
            e["lifecyclePolicyArn"] == policy_arn and e["state"]["status"] in _RUNNING
            for e in self._lc_executions(req).values()
        )

    def _lc_start(self, req: Request, policy_arn: str, policy: Record, start: dt.datetime) -> None:
        """Evaluate the policy's rules at `start` and record what the execution will act on."""
        scope = self._lc_scope(req, policy_arn, start)
        plan = self._lc_evaluate(scope, policy, start)
        started = iso(start)
        lce = execution_id(policy_arn, started)
        resources = []
        for image_arn, (action, include, rule_reason) in plan.items():
            image = scope.table("images")[image_arn]
            resources.append(
                {
                    "accountId": scope.account,
                    "resourceId": image_arn,
                    "region": scope.region,
                    "state": {"status": "IN_PROGRESS"},
                    "action": {"name": action, "reason": rule_reason},
                    "startTime": started,
                    "_include": include,
                    "_children": self._lc_children(image, action, include, started),
                }
            )
        req.state.setdefault(EXECUTIONS, {})[lce] = {
            "lifecycleExecutionId": lce,
            "lifecyclePolicyArn": policy_arn,
            "resourcesImpactedSummary": {"hasImpactedResources": bool(resources)},
            "state": {"status": "IN_PROGRESS"},
            "startTime": started,
            "_account": scope.account,
            "_region": scope.region,
            "_resources": resources,
        }
        policy["dateLastRun"] = policy["_lastRunAt"] = started

    def _lc_scope(self, req: Request, policy_arn: str, now: dt.datetime) -> Request:
        """A request in the policy's own account and region, at `now`."""
        region, account = policy_arn.split(":")[3:5]
        scope = Request(req.state, region, req.operation, {}, account)
        scope.now = now
        return scope

    def _lc_evaluate(self, scope: Request, policy: Record, now: dt.datetime) -> dict[str, tuple[str, Record, str]]:
        """image ARN -> (action, includeResources, why) of the last rule that acts on it."""
        pool = self._lc_considered(scope, policy)
        images = dict(pool)
        status = {arn: image["state"]["status"] for arn, image in pool}
        ranked = [arn for arn, _ in pool]
        plan: dict[str, tuple[str, Record, str]] = {}
        for number, rule in enumerate(policy.get("policyDetails") or [], start=1):
            action = rule["action"]["type"]
            flt = rule["filter"]
            if flt["type"] == "COUNT":
                marked = ranked[flt["value"] :]
                why = f"Rule {number}: {action} all but the newest {flt['value']} images."
            else:
                unit = flt.get("unit", "DAYS")
                cutoff = age_cutoff(now, flt["value"], unit)
                kept = flt.get("retainAtLeast") or 0
                marked = [arn for arn in ranked[kept:] if _parse(images[arn]["dateCreated"]) <= cutoff]
                why = f"Rule {number}: {action} images older than {flt['value']} {unit.lower()}" + (
                    f", keeping at least {kept}." if kept else "."
                )
            for arn in marked:
                if arn not in status or status[arn] not in _ACTS_ON[action]:
                    continue
                if self._lc_excluded(images[arn], rule.get("exclusionRules") or {}):
                    continue
                plan[arn] = (action, dict(rule["action"].get("includeResources") or {}), why)
                if action == "DELETE":
                    del status[arn]
                else:
                    status[arn] = _NEW_STATUS[action]
            ranked = [arn for arn in ranked if arn in status]
        return plan

    def _lc_considered(self, scope: Request, policy: Record) -> list[tuple[str, Record]]:
        """The policy's images, newest first."""
        selection = policy.get("resourceSelection") or {}
        wanted_type = _IMAGE_TYPE.get(policy.get("resourceType", "AMI_IMAGE"), "AMI")
        found = []
        for image in scope.own("images"):
            if image.get("type", "AMI") != wanted_type or image["state"]["status"] not in _USABLE:
                continue
            if not image.get("dateCreated"):
                continue
            by_recipe = any(
                r.get("name") == image["name"] and _version_matches(r.get("semanticVersion", "x.x.x"), image["version"])
                for r in selection.get("recipes") or []
            )
            if by_recipe or _any_tag(image.get("tags"), selection.get("tagMap")):
                found.append((image["arn"], image))
        found.sort(
            key=lambda pair: (_parse(pair[1]["dateCreated"]), version_key(pair[1]["version"]), build_of(pair[1])),
            reverse=True,
        )
        return found

    def _lc_excluded(self, image: Record, rules: Record) -> bool:
        if _any_tag(image.get("tags"), rules.get("tagMap")):
            return True
        amis_rule = rules.get("amis")
        if not amis_rule:
            return False
        distributions = {
            d.get("region"): d.get("amiDistributionConfiguration") or {}
            for d in (image.get("distributionConfiguration") or {}).get("distributions") or []
        }
        for ami in (image.get("outputResources") or {}).get("amis") or []:
            config = distributions.get(ami.get("region"), {})
            permission = config.get("launchPermission") or {}
            if amis_rule.get("isPublic") and "all" in (permission.get("userGroups") or []):
                return True
            if ami.get("region") in (amis_rule.get("regions") or []):
                return True
            if set(permission.get("userIds") or []) & set(amis_rule.get("sharedAccounts") or []):
                return True
            ami_tags = {**((image.get("imageRecipe") or {}).get("amiTags") or {}), **(config.get("amiTags") or {})}
            if _any_tag(ami_tags, amis_rule.get("tagMap")):
                return True
        return False

    def _lc_children(self, image: Record, action: str, include: Record, started: str) -> list[Record]:
        """The distributed resources (AMIs with their snapshots, container images) the action reaches."""
        outputs = image.get("outputResources") or {}
        children: list[Record] = []
        if include.get("amis"):
            for ami in outputs.get("amis") or []:
                child: Record = {
                    "accountId": ami.get("accountId"),
                    "resourceId": ami["image"],
                    "region": ami["region"],
                    "state": {"status": "IN_PROGRESS"},
                    "action": {"name": action},
                    "startTime": started,
                }
                if action == "DELETE" and include.get("snapshots"):
                    snapshot = {"snapshotId": _snapshot_id(ami["image"]), "state": {"status": "IN_PROGRESS"}}
                    child["snapshots"] = [snapshot]
                children.append(child)
        if include.get("containers") and action == "DELETE":
            for container in outputs.get("containers") or []:
                uris = list(container.get("imageUris") or [])
                children.append(
                    {
                        "accountId": image.get("owner"),
                        "resourceId": uris[0] if uris else image["arn"],
                        "region": container["region"],
                        "imageUris": uris,
                        "state": {"status": "IN_PROGRESS"},
                        "action": {"name": action},
                        "startTime": started,
                    }
                )
        return children

    def _lc_finish(self, req: Request, policy_arn: str | None, until: dt.datetime) -> bool:
        """End the executions (of one policy, or all) that are over by `until`."""
        changed = False
        policies = req.state["resources"].get("lifecyclePolicies") or {}
        for execution in self._lc_executions(req).values():
            if policy_arn is not None and execution["lifecyclePolicyArn"] != policy_arn:
                continue
            status = execution["state"]["status"]
            if status == "CANCELLING" and iso(until) > execution["_cancelAt"]:  # at the stored millisecond precision
                self._lc_end(req, execution, _parse(execution["_cancelAt"]), "The lifecycle execution was cancelled.")
                changed = True
            elif status == "IN_PROGRESS":
                end = _parse(execution["startTime"]) + dt.timedelta(seconds=EXECUTION_SECONDS)
                if end > until:
                    continue
                policy = policies.get(execution["lifecyclePolicyArn"])
                if policy is None:
                    self._lc_end(req, execution, end, "The lifecycle policy was deleted before the actions ran.")
                elif policy.get("status", "ENABLED") != "ENABLED":
                    self._lc_end(req, execution, end, "The lifecycle policy was disabled before the actions ran.")
                else:
                    self._lc_apply(req, execution, end)
                changed = True
        return changed

    def _lc_end(self, req: Request, execution: Record, end: dt.datetime, reason: str) -> None:
        """CANCELLED: nothing was applied; every resource is SKIPPED."""
        ended = iso(end)
        skipped = {"status": "SKIPPED", "reason": reason}
        for resource in execution["_resources"]:
            resource.update(state=dict(skipped), endTime=ended)
            for child in resource["_children"]:
                child.update(state=dict(skipped), endTime=ended)
                for snap in child.get("snapshots") or []:
                    snap["state"] = dict(skipped)
        execution.update(state={"status": "CANCELLED", "reason": reason}, endTime=ended)

    def _lc_apply(self, req: Request, execution: Record, end: dt.datetime) -> None:
        ended = iso(end)
        scope = self._lc_scope(req, execution["lifecyclePolicyArn"], end)
        images = scope.table("images")
        for resource in execution["_resources"]:
            arn, action, include = resource["resourceId"], resource["action"]["name"], resource["_include"]
            image = images.get(arn)
            if image is None or image["state"]["status"] not in _ACTS_ON[action]:
                reason = "The image no longer exists." if image is None else "The image's state changed meanwhile."
                resource.update(state={"status": "SKIPPED", "reason": reason}, endTime=ended)
                for child in resource["_children"]:
                    child.update(state={"status": "SKIPPED", "reason": reason}, endTime=ended)
                    for snap in child.get("snapshots") or []:
                        snap["state"] = {"status": "SKIPPED", "reason": reason}
                continue
            if action == "DELETE":
                del images[arn]
                req.state["policies"].pop(arn, None)
            else:
                image["state"] = {
                    "status": _NEW_STATUS[action],
                    "reason": f"{action.capitalize()}d by lifecycle policy {execution['lifecyclePolicyArn']}.",
                }
                image["lifecycleExecutionId"] = execution["lifecycleExecutionId"]
            outcome = self._lc_outcome(image, action, include)
            resource.update(state={"status": "SUCCESS", "reason": outcome}, endTime=ended)
            for child in resource["_children"]:
                child.update(state={"status": "SUCCESS"}, endTime=ended)
                for snap in child.get("snapshots") or []:
                    snap["state"] = {"status": "SUCCESS"}
        execution.update(state={"status": "SUCCESS"}, endTime=ended)

    @staticmethod
    def _lc_outcome(image: Record, action: str, include: Record) -> str:
        verb = {"DELETE": "deleted", "DEPRECATE": "deprecated", "DISABLE": "disabled"}[action]
        if image.get("type") == "DOCKER":
            if action != "DELETE":
                return f"The image was {verb}."
            kept = "deleted" if include.get("containers") else "kept"
            return f"The image was deleted; its container images in ECR were {kept}."
        if not include.get("amis"):
            return f"The image was {verb}; its AMIs were left as they were."
        ami_verb = {"DELETE": "deregistered", "DEPRECATE": "deprecated", "DISABLE": "disabled"}[action]
        text = f"The image was {verb}; its AMIs were {ami_verb}"
        if action == "DELETE":
            text += "; their snapshots were " + ("deleted." if include.get("snapshots") else "kept.")
        else:
            text += "."
        return text

    # --- operations -----------------------------------------------------------------------------

    def _lc_execution(self, req: Request) -> Record:
        lce = req.params["lifecycleExecutionId"]
        execution = self._lc_executions(req).get(lce)
        if execution is None or (execution["_account"], execution["_region"]) != (req.account, req.region):
            raise SandboxError("ResourceNotFoundException", f"The lifecycle execution '{lce}' does not exist.")
        return execution

    def op_get_lifecycle_execution(self, req: Request) -> Record:
        return {"lifecycleExecution": copy.deepcopy(self._lc_execution(req))}

    def op_list_lifecycle_executions(self, req: Request) -> Record:
        arn = req.params["resourceArn"]
        own = [
            e
            for e in self._lc_executions(req).values()
            if (e["_account"], e["_region"]) == (req.account, req.region)
            and (e["lifecyclePolicyArn"] == arn or any(r["resourceId"] == arn for r in e["_resources"]))
        ]
        own.sort(key=lambda e: (e["startTime"], e["lifecycleExecutionId"]), reverse=True)
        page, token = paginate(req.operation, req.params, copy.deepcopy(own))
        return {"lifecycleExecutions": page, "nextToken": token}

    def op_list_lifecycle_execution_resources(self, req: Request) -> Record:
        execution = self._lc_execution(req)
        parent = req.params.get("parentResourceId")
        if parent is None:
            rows = execution["_resources"]
        else:
            rows = next((r["_children"] for r in execution["_resources"] if r["resourceId"] == parent), [])
        page, token = paginate(req.operation, req.params, copy.deepcopy(rows))
        return {
            "lifecycleExecutionId": execution["lifecycleExecutionId"],
            "lifecycleExecutionState": copy.deepcopy(execution["state"]),
            "resources": page,
            "nextToken": token,
        }

    def op_cancel_lifecycle_execution(self, req: Request) -> Record:
        execution = self._lc_execution(req)
        status = execution["state"]["status"]
        if status not in ("IN_PROGRESS", "PENDING"):
            raise SandboxError(
                "InvalidRequestException",
                f"The lifecycle execution '{execution['lifecycleExecutionId']}' is {status} and cannot be cancelled; "
                "only an execution that has not ended can be.",
            )
        execution["state"] = {"status": "CANCELLING", "reason": "Cancellation was requested."}
        execution["_cancelAt"] = req.timestamp()
        return {"lifecycleExecutionId": execution["lifecycleExecutionId"]}
