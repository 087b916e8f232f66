"""The DynamoDB and S3 locks' AWS errors: throttling is retried with backoff like any Image Builder
call, a failed condition means "held by someone else" (never retried), and anything else is a
clear error naming the table or bucket and the AWS error code, exit 1 through the CLI.

moto answers DynamoDB and S3; throttling and refusals are injected with botocore's own
`before-call` hook on the lock's client, which answers in place of the service for the first
calls, so everything above the wire (botocore's parsing, imagesync's classification) is real.
The CLI run reaches a stand-in DynamoDB endpoint that refuses every call, as an IAM policy
without dynamodb:PutItem would.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from imagesync.aws import Backoff
from imagesync.errors import UserError
from imagesync.lock import DynamoDBLock, LockHeld, S3Lock, lock_id, make_lock
from imagesync.sandbox import running
from support import stop_heartbeats

REGION = "us-east-1"
LOCK = lock_id("shop", "111111111111", REGION)
TABLE = "locks"
BUCKET = "lock-bucket"
CONFIGS = {
    "dynamodb": {"backend": "dynamodb", "table": TABLE, "region": REGION},
    "s3": {"backend": "s3", "bucket": BUCKET, "key": "team/locks", "region": REGION},
}


class Answers:
    """Counts every call per operation; answers the first `times` calls of `operation` itself."""

    def __init__(self, client: Any) -> None:
        self.calls: dict[str, int] = {}
        self.script: dict[str, list[tuple[int, str]]] = {}
        client.meta.events.register("before-call", self._before_call)

    def fail(self, operation: str, status: int, code: str, times: int) -> None:
        self.script[operation] = [(status, code)] * times

    def _before_call(self, model: Any, **_: Any) -> Any:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1
        pending = self.script.get(model.name)
        if not pending:
            return None  # on to moto
        status, code = pending.pop(0)
        parsed = {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return AWSResponse("https://injected.invalid/", status, {}, None), parsed


class Sleeps:
    """A sleep that moves a simulated clock (`now`), so a retry deadline passes without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.clock = 0.0

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.clock += delay

    def now(self) -> float:
        return self.clock


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        session.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        session.client("s3").create_bucket(Bucket=BUCKET)
        yield session
        stop_heartbeats()


def make(session: boto3.Session, backend: str, sleeps: Sleeps) -> DynamoDBLock | S3Lock:
    backoff = Backoff(sleep=sleeps, clock=sleeps.now, deadline=30.0)
    lock = make_lock(CONFIGS[backend], LOCK, directory=Path("/nonexistent"), session=session, backoff=backoff)
    assert isinstance(lock, (DynamoDBLock, S3Lock))
    return lock


WRITE = {"dynamodb": "PutItem", "s3": "PutObject"}


@pytest.mark.parametrize(
    ("backend", "status", "code"),
    [
        ("dynamodb", 400, "ProvisionedThroughputExceededException"),
        ("dynamodb", 400, "ThrottlingException"),
        ("dynamodb", 500, "InternalServerError"),
        ("s3", 503, "SlowDown"),
        ("s3", 500, "InternalError"),
    ],
)
def test_throttled_lock_writes_are_retried_with_backoff_and_the_lock_is_taken(
    aws: boto3.Session, backend: str, status: int, code: str
) -> None:
    sleeps = Sleeps()
    lock = make(aws, backend, sleeps)
    answers = Answers(lock.client)
    answers.fail(WRITE[backend], status, code, times=3)
    info = lock.acquire("apply")
    try:
        assert answers.calls[WRITE[backend]] == 4, "three throttled attempts, then the write"
        assert len(sleeps.delays) == 3
        # The record is really there: another run (another operation, so not mistaken for this
        # one's own write) sees this holder.
        with pytest.raises(LockHeld) as caught:
            make(aws, backend, Sleeps()).acquire("unlock")
        assert caught.value.holder == info
    finally:
        lock.release()
    assert make(aws, backend, Sleeps())._read() is None


@pytest.mark.parametrize("backend", ["dynamodb", "s3"])
def test_a_held_lock_is_an_answer_not_an_error_to_retry(aws: boto3.Session, backend: str) -> None:
    holder = make(aws, backend, Sleeps())
    holder.acquire("apply")
    try:
        sleeps = Sleeps()
        contender = make(aws, backend, sleeps)
        answers = Answers(contender.client)
        with pytest.raises(LockHeld):
            contender.acquire("unlock")
        assert answers.calls[WRITE[backend]] == 1 and sleeps.delays == []
    finally:
        holder.release()


@pytest.mark.parametrize(
    ("backend", "status", "code", "names"),
    [
        ("dynamodb", 400, "AccessDeniedException", f"lock table '{TABLE}'"),
        ("dynamodb", 400, "ValidationException", f"lock table '{TABLE}'"),
        ("s3", 403, "AccessDenied", f"lock bucket '{BUCKET}'"),
    ],
)
def test_other_lock_errors_are_user_errors_naming_the_resource_and_code(
    aws: boto3.Session, backend: str, status: int, code: str, names: str
) -> None:
    sleeps = Sleeps()
    lock = make(aws, backend, sleeps)
    answers = Answers(lock.client)
    answers.fail(WRITE[backend], status, code, times=1)
    with pytest.raises(UserError) as caught:
        lock.acquire("apply")
    message = str(caught.value)
    assert names in message and code in message and WRITE[backend] in message
    assert answers.calls[WRITE[backend]] == 1 and sleeps.delays == [], "a refusal is not retried"
    assert caught.value.exit_code == 1


@pytest.mark.parametrize("backend", ["dynamodb", "s3"])
def test_throttling_that_outlasts_the_retries_says_so(aws: boto3.Session, backend: str) -> None:
    sleeps = Sleeps()
    lock = make(aws, backend, sleeps)
    answers = Answers(lock.client)
    answers.fail(WRITE[backend], 503, "ServiceUnavailable", times=1000)
    with pytest.raises(Exception) as caught:
        lock.acquire("apply")
    assert "still failing after retries" in str(caught.value) and "ServiceUnavailable" in str(caught.value)
    # Retried until the deadline (30 simulated seconds), not for a fixed number of attempts.
    assert sum(sleeps.delays) == pytest.approx(30.0)
    assert answers.calls[WRITE[backend]] == len(sleeps.delays) + 1 > 10


# -- through the CLI ---------------------------------------------------------------------------


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A DynamoDB endpoint whose caller may do nothing: every call answers AccessDeniedException."""

    calls: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).calls.append(str(self.headers.get("X-Amz-Target", "")))
        body = json.dumps(
            {
                "__type": "com.amazon.coral.service#AccessDeniedException",
                "message": "User: arn:aws:iam::111111111111:user/ci is not authorized to perform: dynamodb:PutItem",
            }
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def refusing_dynamodb() -> Iterator[str]:
    _Refusing.calls = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_cli_apply_with_a_denied_lock_table_exits_1_naming_it_and_writes_nothing(
    tmp_path: Path, refusing_dynamodb: str
) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "imagesync.yaml").write_text(
        f'project: shop\ntargets:\n  - name: prod\n    region: {REGION}\n    account: "111111111111"\n'
        f"lock: {{backend: dynamodb, table: {TABLE}, region: {REGION}}}\n"
    )
    (root / "infra.yaml").write_text(
        "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: build}\n"
        "spec: {instanceProfileName: build, instanceTypes: [m7i.large]}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with running() as served:
        env.update(
            AWS_ACCESS_KEY_ID="111111111111",  # the sandbox's user in the target's account
            AWS_SECRET_ACCESS_KEY="x",
            AWS_CONFIG_FILE=str(tmp_path / "no-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_ENDPOINT_URL=served.endpoint_url,
            AWS_ENDPOINT_URL_DYNAMODB=refusing_dynamodb,
        )
        done = subprocess.run(
            [sys.executable, "-m", "imagesync", "apply", str(root), "--auto-approve"],
            cwd=tmp_path, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
        )
        with urllib.request.urlopen(f"{served.endpoint_url}/_sandbox/stats", timeout=10) as resp:
            operations: dict[str, int] = json.loads(resp.read())["operations"]
    assert done.returncode == 1, done.stderr
    assert f"lock table '{TABLE}'" in done.stderr and "PutItem failed: AccessDeniedException" in done.stderr
    assert "Traceback" not in done.stderr
    assert _Refusing.calls == ["DynamoDB_20120810.PutItem"], "a refusal is asked once, not retried"
    assert not [op for op in operations if op.startswith(("Create", "Update", "Delete", "Tag"))]
