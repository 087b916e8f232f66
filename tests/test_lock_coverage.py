"""Lock paths the everyday tests do not take: unreadable records, misuse, lost and failing
heartbeats, unreachable or refusing lock stores, and an unlock that races a live holder.

DynamoDB and S3 are moto's, or a real client pointed at a closed port; Image Builder plays no part.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from structlog.testing import capture_logs

from imagesync.aws import CLIENT_CONFIG, Backoff
from imagesync.errors import TransientError, UserError
from imagesync.lock import DynamoDBLock, FileLock, LockHeld, LockInfo, S3Lock, lock_id, unlock
from support import moto_lock_store, wait_until

LOCK_ID = lock_id("shop", "111111111111", "us-east-1")
TABLE = "imagesync-locks"
BUCKET = "imagesync-locks"
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens
NO_WAIT = Backoff(attempts=2, sleep=lambda _seconds: None)


moto_store = moto_lock_store  # a moto table or bucket named TABLE / BUCKET


def make(backend: str, client: Any, **timing: Any) -> DynamoDBLock | S3Lock:
    if backend == "dynamodb":
        return DynamoDBLock(client, TABLE, LOCK_ID, **timing)
    return S3Lock(client, BUCKET, LOCK_ID, **timing)


# -- records that are not what a holder writes ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "not a JSON object"),
        ('{"id": "x", "who": "w"}', "missing or has a bad field"),
        ('{"id": "x", "who": "w", "pid": "twelve", "operation": "apply", "created": "t"}', "invalid literal"),
        ('{"id": "x", "who": "w", "pid": null, "operation": "apply", "created": "t"}', "bad field"),
    ],
    ids=["array", "missing-fields", "pid-not-a-number", "pid-null"],
)
def test_an_unreadable_lock_record_is_a_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LockInfo.from_json(text)


@pytest.mark.parametrize(
    ("heartbeat", "age"),
    [
        ("", None),
        ("not a time", None),
        ("2024-05-01T10:00:00", 60.0),  # no zone: UTC, as imagesync writes it
        ("2024-05-01T10:00:00Z", 60.0),
        ("2024-05-01T10:05:00Z", 0.0),  # a holder whose clock runs ahead is not younger than now
    ],
    ids=["none", "garbage", "naive", "utc", "future"],
)
def test_heartbeat_age(heartbeat: str, age: float | None) -> None:
    info = LockInfo(id=LOCK_ID, who="w", pid=1, operation="apply", created="c", heartbeat=heartbeat)
    now = 1714557660.0  # 2024-05-01T10:01:00Z
    assert info.heartbeat_age(now) == age


def test_s3_record_that_is_not_a_lock_is_shown_as_an_unknown_stale_holder() -> None:
    with moto_store("s3") as client:
        client.put_object(Bucket=BUCKET, Key=f"imagesync/locks/{LOCK_ID}.json", Body=b"not json at all")
        with pytest.raises(LockHeld) as raised:
            S3Lock(client, BUCKET, LOCK_ID).acquire("apply")
        assert raised.value.holder is not None and raised.value.holder.who == "unknown"
        assert "records no heartbeat" in str(raised.value)
        assert f"imagesync unlock {LOCK_ID}" in str(raised.value)
        # With no heartbeat it counts as stale: unlock removes it.
        assert unlock(LOCK_ID, s3_client=client, bucket=BUCKET) is not None
        assert client.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


# -- misuse ---------------------------------------------------------------------------------------


def test_a_file_lock_cannot_be_acquired_twice_by_its_holder(tmp_path: Path) -> None:
    lock = FileLock(tmp_path, LOCK_ID)
    lock.acquire("apply")
    with pytest.raises(RuntimeError, match="already held"):
        lock.acquire("apply")
    lock.release()
    lock.release()  # a second release is harmless
    assert (tmp_path / "shop--111111111111--us-east-1.lock").read_text() == ""


@pytest.mark.parametrize("backend", ["dynamodb", "s3"])
def test_a_remote_lock_cannot_be_acquired_twice_by_its_holder(backend: str) -> None:
    with moto_store(backend) as client:
        lock = make(backend, client)
        with lock.held("apply"):
            with pytest.raises(RuntimeError, match="already held"):
                lock.acquire("apply")


def test_a_remote_lock_needs_an_id() -> None:
    with pytest.raises(UserError, match="must not be empty"):
        DynamoDBLock(object(), TABLE, "")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dynamodb_client": object()}, "needs the lock table name"),
        ({"s3_client": object()}, "needs the lock bucket name"),
        ({}, "needs a lock directory, a DynamoDB table or an S3 bucket"),
    ],
    ids=["dynamodb-without-table", "s3-without-bucket", "nothing"],
)
def test_unlock_without_a_place_to_look_is_a_user_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        unlock(LOCK_ID, **kwargs)


def test_unlock_of_a_file_lock_nobody_took_returns_nothing(tmp_path: Path) -> None:
    assert unlock(LOCK_ID, directory=tmp_path) is None


@pytest.mark.parametrize("backend", ["dynamodb", "s3"])
def test_unlock_of_a_remote_lock_nobody_took_returns_nothing(backend: str) -> None:
    with moto_store(backend) as client:
        kwargs = {"dynamodb_client": client, "table": TABLE} if backend == "dynamodb" else {
            "s3_client": client, "bucket": BUCKET}
        assert unlock(LOCK_ID, **kwargs) is None


# -- heartbeats that fail or find the lock gone -------------------------------------------------


@pytest.mark.parametrize("backend", ["dynamodb", "s3"])
def test_a_lock_broken_while_held_is_reported_lost(backend: str) -> None:
    with moto_store(backend) as client, capture_logs() as events:
        lock = make(backend, client, heartbeat_interval=0.02)
        lock.acquire("apply")
        if backend == "dynamodb":
            client.delete_item(TableName=TABLE, Key={"LockID": {"S": LOCK_ID}})
        else:
            client.delete_object(Bucket=BUCKET, Key=f"imagesync/locks/{LOCK_ID}.json")
        heartbeat = lock._heartbeat
        assert heartbeat is not None
        wait_until(lambda: heartbeat.lost, "the heartbeat notices the lock is gone")
        lost = [e for e in events if e["event"] == "lock lost"]
        assert lost and lost[0]["lock"] == LOCK_ID and lost[0]["log_level"] == "error"
        lock.release()  # nothing of ours left to delete: no error


def test_a_failing_heartbeat_is_logged_and_retried() -> None:
    with moto_store("dynamodb") as client, capture_logs() as events:
        lock = DynamoDBLock(client, TABLE, LOCK_ID, heartbeat_interval=0.02, backoff=NO_WAIT)
        lock.acquire("apply")
        client.delete_table(TableName=TABLE)  # every beat now fails with ResourceNotFoundException
        wait_until(
            lambda: len([e for e in events if e["event"] == "lock heartbeat failed"]) >= 2,
            "two heartbeats fail",
        )
        failed = next(e for e in events if e["event"] == "lock heartbeat failed")
        assert TABLE in failed["error"] and "ResourceNotFoundException" in failed["error"]
        heartbeat = lock._heartbeat
        assert heartbeat is not None and not heartbeat.lost  # a failed beat is not a lost lock
        with pytest.raises(UserError, match="does not exist"):
            lock.release()


# -- lock stores that cannot be reached or refuse ------------------------------------------------


@pytest.mark.parametrize("backend", ["dynamodb", "s3"])
def test_an_unreachable_lock_store_is_a_transient_error_naming_it(backend: str) -> None:
    service = "dynamodb" if backend == "dynamodb" else "s3"
    client = boto3.client(service, region_name="us-east-1", endpoint_url=CLOSED, config=CLIENT_CONFIG)
    lock = make(backend, client, backoff=NO_WAIT)
    with pytest.raises(TransientError) as raised:
        lock.acquire("apply")
    assert (TABLE if backend == "dynamodb" else BUCKET) in str(raised.value)
    assert lock.info is None


def test_a_refusal_that_is_not_an_answer_is_a_user_error_naming_the_table_and_code() -> None:
    with moto_store("dynamodb") as client:
        # A table whose key is not LockID: DynamoDB refuses every lock write with a validation error.
        client.create_table(
            TableName="wrong-key",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        with pytest.raises(UserError) as raised:
            DynamoDBLock(client, "wrong-key", LOCK_ID).acquire("apply")
        assert "lock table 'wrong-key'" in str(raised.value)
        assert "ValidationException" in str(raised.value)
        assert not isinstance(raised.value, TransientError)


def test_a_missing_bucket_is_a_user_error_saying_what_to_fix() -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        with pytest.raises(UserError, match="lock.bucket") as raised:
            S3Lock(client, "no-such-bucket", LOCK_ID).acquire("apply")
        assert "NoSuchBucket" in str(raised.value)


# -- unlock racing a holder that keeps beating -----------------------------------------------------


def test_unlock_gives_up_when_the_record_keeps_changing() -> None:
    with moto_store("dynamodb") as client:
        stale = {
            "LockID": {"S": LOCK_ID},
            "who": {"S": "bob@ci-runner"},
            "pid": {"N": "4242"},
            "operation": {"S": "apply"},
            "created": {"S": "2024-05-01T10:00:00Z"},
            "heartbeat": {"S": "2024-05-01T10:00:00.000Z"},
        }
        client.put_item(TableName=TABLE, Item=stale)
        beats = iter(range(1, 100))

        def beat_before_each_delete(**_kwargs: Any) -> None:
            # The holder's heartbeat lands between unlock's read and its conditional delete, every time.
            second = next(beats)
            item = {**stale, "heartbeat": {"S": f"2024-05-01T10:00:{second:02d}.000Z"}}
            other = boto3.client("dynamodb", region_name="us-east-1")
            other.put_item(TableName=TABLE, Item=item)

        client.meta.events.register("before-call.dynamodb.DeleteItem", beat_before_each_delete)
        with pytest.raises(TransientError, match="keeps changing"):
            unlock(LOCK_ID, dynamodb_client=client, table=TABLE)
        assert next(beats) == 6  # five rounds of read, judge, delete
        item = client.get_item(TableName=TABLE, Key={"LockID": {"S": LOCK_ID}}, ConsistentRead=True)["Item"]
        assert item["who"]["S"] == "bob@ci-runner"  # never deleted under a holder it had not read


def test_lock_info_round_trips_through_json() -> None:
    info = LockInfo.current(LOCK_ID, "apply", now=1714557660.0)
    assert LockInfo.from_json(info.to_json()) == info
    assert json.loads(info.to_json())["id"] == LOCK_ID
