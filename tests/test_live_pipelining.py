"""Live reads start as soon as they can: a configuration's Get as soon as a list page names it,
and every target's lists at once. Real boto3 clients against the sandbox; botocore's own event
hooks hold one call back until the call that must overtake it has been sent, so the order is
checked without timing anything (a hold that is never released fails the test)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from imagesync import api
from imagesync.aws import CallCounter, ConnectOptions, Connector
from imagesync.live import read_live
from imagesync.manifest.loader import load
from imagesync.manifest.problems import ManifestError
from imagesync.planner import PlanOptions, make_plan
from imagesync.sandbox import RunningSandbox, running
from support import HookedConnector, make_client

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


def write_project(root: Path, manifest: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagesync.yaml").write_text(
        'project: p\ntargets:\n  - {name: one, region: us-east-1, account: "111111111111"}\n'
    )
    (root / "m.yaml").write_text(manifest)
    return root


GOOD = (
    "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: build}\n"
    "spec: {instanceProfileName: p}\n"
)


def test_lists_start_while_the_manifests_load(sandbox: RunningSandbox, tmp_path: Path, monkeypatch: Any) -> None:
    """`plan` needs only the project file to start reading: the loader is held until a list has
    been sent, which only reads started before the manifests loaded can do."""
    setup = make_client(sandbox.endpoint_url, account="111111111111")
    setup.create_infrastructure_configuration(name="build", instanceProfileName="p")
    root = write_project(tmp_path / "m", GOOD)
    listed = threading.Event()
    seen = {"listed before loading": False}
    real_load = api.load

    def load_after_a_list(*args: Any, **kwargs: Any) -> Any:
        seen["listed before loading"] = listed.wait(HOLD)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(api, "load", load_after_a_list)
    hooks = {"before-call.imagebuilder.ListInfrastructureConfigurations": lambda **_: listed.set()}
    counter = CallCounter()
    plan, _ = api.plan(root, HookedConnector(sandbox, hooks), PlanOptions(), counter)
    assert seen == {"listed before loading": True}

    # The same plan and the same calls as reading after loading: nothing read twice, nothing added.
    later = CallCounter()
    again = make_plan(load(root), Connector(ConnectOptions(sandbox=sandbox.endpoint_url)), PlanOptions(), later)
    assert [c.to_json() for t in plan.targets for c in t.changes] == [
        c.to_json() for t in again.targets for c in t.changes
    ]
    assert counter.counts == later.counts
    assert counter.counts["GetInfrastructureConfiguration"] == 1


def test_a_manifest_error_ends_the_early_reads(tmp_path: Path, monkeypatch: Any) -> None:
    """Against a service that throttles every call, reads retry for minutes; when the manifests
    fail to load (here only once a list has been tried), the error is the manifest's and the
    reads started for them stop at once, in the middle of their retries."""
    root = write_project(tmp_path / "m", GOOD.replace("instanceProfileName: p", "instanceProfileName: 7"))
    tried = threading.Event()
    real_load = api.load

    def load_after_a_list(*args: Any, **kwargs: Any) -> Any:
        assert tried.wait(HOLD)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(api, "load", load_after_a_list)
    counter = CallCounter()
    with running(throttle_rate=1.0) as throttling:
        hooks = {"before-call.imagebuilder.ListInfrastructureConfigurations": lambda **_: tried.set()}
        with pytest.raises(ManifestError, match="instanceProfileName"):
            api.plan(root, HookedConnector(throttling, hooks), PlanOptions(), counter)
        deadline = time.monotonic() + HOLD
        while any(t.name.startswith("imagesync-early") for t in threading.enumerate()):
            assert time.monotonic() < deadline, "the early reads are still retrying"
            time.sleep(0.05)
    assert counter.counts["ListInfrastructureConfigurations"] >= 1
    assert "GetInfrastructureConfiguration" not in counter.counts


def test_list_all_follows_every_page(sandbox: RunningSandbox) -> None:
    from imagesync.aws import list_all

    client = make_client(sandbox.endpoint_url)
    for i in range(30):
        client.create_infrastructure_configuration(name=f"page-{i:02d}", instanceProfileName="p")
    counter = CallCounter()
    items = list_all(
        client, "ListInfrastructureConfigurations", {"maxResults": 25}, "infrastructureConfigurationSummaryList",
        counter=counter,
    )
    assert sorted(i["name"] for i in items) == [f"page-{i:02d}" for i in range(30)]
    assert counter.counts == {"ListInfrastructureConfigurations": 2}


def test_reads_in_flight_reach_the_concurrency_bound_and_never_pass_it(sandbox: RunningSandbox) -> None:
    setup = make_client(sandbox.endpoint_url)
    names = [f"bound-{i:02d}" for i in range(12)]
    for name in names:
        setup.create_infrastructure_configuration(name=name, instanceProfileName="p", clientToken=name)
    client = make_client(sandbox.endpoint_url, max_pool_connections=20)  # room for more than the bound
    bound = 3
    changed = threading.Condition()
    state = {"in_flight": 0, "most": 0, "started": 0}

    def on_before(**_: Any) -> None:
        # Each read waits until `bound` are in flight (or every read has started): a bound that is
        # not kept lets a fourth in while three wait.
        with changed:
            state["started"] += 1
            state["in_flight"] += 1
            state["most"] = max(state["most"], state["in_flight"])
            changed.notify_all()
            changed.wait_for(lambda: state["in_flight"] >= bound or state["started"] == len(names), timeout=HOLD)

    def on_after(**_: Any) -> None:
        with changed:
            state["in_flight"] -= 1
            changed.notify_all()

    client.meta.events.register("before-call.imagebuilder.GetInfrastructureConfiguration", on_before)
    client.meta.events.register("after-call.imagebuilder.GetInfrastructureConfiguration", on_after)
    live = read_live(client, wanted={"InfrastructureConfiguration": set(names)}, concurrency=bound)
    assert all(live.get("InfrastructureConfiguration", n).body is not None for n in names)
    assert state["most"] == bound


def test_the_clis_concurrency_default_is_the_libraries() -> None:
    from imagesync.cli import build_parser
    from imagesync.live import DEFAULT_CONCURRENCY

    args = build_parser().parse_args(["plan", "."])
    assert args.concurrency == DEFAULT_CONCURRENCY == PlanOptions().concurrency == 64
