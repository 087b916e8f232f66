"""Live reads start as soon as they can: a configuration's Get as soon as a list page names it,
and every target's lists at once. Real boto3 clients against the sandbox; botocore's own event
hooks hold one call back until the call that must overtake it has been sent, so the order is
checked without timing anything (a hold that is never released fails the test)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from imagesync.aws import CallCounter, ConnectOptions, Connector
from imagesync.live import read_live
from imagesync.manifest.loader import load
from imagesync.planner import PlanOptions, make_plan
from imagesync.sandbox import RunningSandbox
from support import make_client

HOLD = 20.0  # seconds a held call waits for the call that should overtake it; never reached when right


def hold_until(client: Any, held: str, overtaker: str, *, only_later_pages: bool) -> dict[str, bool]:
    """Make `held` calls wait until an `overtaker` call has been sent; report whether one was."""
    sent = threading.Event()
    seen = {"overtaken": False, "held": False}

    def on_overtaker(**_: Any) -> None:
        sent.set()

    def on_held(params: dict[str, Any], **_: Any) -> None:
        if only_later_pages and "nextToken" not in params:
            return
        seen["held"] = True
        seen["overtaken"] = sent.wait(HOLD) or seen["overtaken"]

    client.meta.events.register(f"before-call.imagebuilder.{overtaker}", on_overtaker)
    client.meta.events.register(f"before-parameter-build.imagebuilder.{held}", on_held)
    return seen


def test_a_configurations_get_starts_before_its_list_has_ended(sandbox: RunningSandbox) -> None:
    setup = make_client(sandbox.endpoint_url)
    names = [f"build-{i:02d}" for i in range(60)]  # three pages of 25
    for name in names:
        setup.create_infrastructure_configuration(name=name, instanceProfileName="p", clientToken=name)
    client = make_client(sandbox.endpoint_url)
    seen = hold_until(
        client, "ListInfrastructureConfigurations", "GetInfrastructureConfiguration", only_later_pages=True
    )
    counter = CallCounter()
    live = read_live(client, wanted={"InfrastructureConfiguration": set(names)}, counter=counter)
    assert seen == {"held": True, "overtaken": True}
    assert all(live.get("InfrastructureConfiguration", n).body is not None for n in names)
    assert counter.counts["ListInfrastructureConfigurations"] == 3
    assert counter.counts["GetInfrastructureConfiguration"] == 60  # one read each, none added


def test_every_target_is_read_at_once(sandbox: RunningSandbox, tmp_path: Path) -> None:
    (tmp_path / "imagesync.yaml").write_text(
        "project: p\ntargets:\n"
        '  - {name: one, region: us-east-1, account: "111111111111"}\n'
        '  - {name: two, region: us-east-1, account: "222222222222"}\n'
    )
    (tmp_path / "m.yaml").write_text(
        "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: build}\n"
        "spec: {instanceProfileName: p}\n"
    )
    desired = load(tmp_path)
    connector = Connector(ConnectOptions(sandbox=sandbox.endpoint_url))
    # Target one's component list waits until target two has sent a list of its own.
    seen = {"held": False, "overtaken": False}
    sent = threading.Event()
    made = connector.imagebuilder

    def on_held(**_: Any) -> None:
        seen["held"] = True
        seen["overtaken"] = sent.wait(HOLD)

    def imagebuilder(target: Any) -> Any:
        client = made(target)
        if target.name == "one":
            client.meta.events.register("before-call.imagebuilder.ListComponents", on_held)
        else:
            client.meta.events.register("before-call.imagebuilder.ListComponents", lambda **_: sent.set())
        return client

    connector.imagebuilder = imagebuilder  # type: ignore[method-assign]
    plan = make_plan(desired, connector, PlanOptions())
    assert seen == {"held": True, "overtaken": True}
    assert [t.target for t in plan.targets] == ["one", "two"]
