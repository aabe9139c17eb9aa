"""rds_slowlog.testing.fault_proxy against a real upstream (moto in server mode) and the real boto3 client.

Each mode is checked from the client's side (the error botocore raises with its retries off) and from the
server's (what reached moto), since the DAG fault tests rely on both: a cut PUT has been stored, a refused
port listens again on the same number, a HEAD keeps the object's length.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from rds_slowlog.testing.fault_proxy import FaultProxy
from tests.moto_server import KEY_ID, REGION, SECRET, moto_endpoint  # noqa: F401 - fixture

BODY = b"0123456789" * 5000


def _s3(endpoint: str, attempts: int = 1) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY_ID,
                        aws_secret_access_key=SECRET,
                        config=Config(retries={"mode": "standard", "total_max_attempts": attempts},
                                      connect_timeout=2, read_timeout=10))


@pytest.fixture
def proxied(moto_endpoint: str) -> Iterator[tuple[Any, Any, FaultProxy, str]]:  # noqa: F811
    direct = _s3(moto_endpoint)
    bucket = f"proxy-{uuid.uuid4().hex[:10]}"
    direct.create_bucket(Bucket=bucket)
    direct.put_object(Bucket=bucket, Key="obj", Body=BODY)
    with FaultProxy(moto_endpoint, flavor="s3") as proxy:
        yield direct, _s3(proxy.endpoint_url), proxy, bucket


def test_healthy_traffic_is_forwarded_byte_exact(proxied) -> None:
    direct, client, proxy, bucket = proxied
    assert client.get_object(Bucket=bucket, Key="obj")["Body"].read() == BODY
    assert client.head_object(Bucket=bucket, Key="obj")["ContentLength"] == len(BODY)   # no body, real length
    client.put_object(Bucket=bucket, Key="new", Body=b"x" * 1000)
    assert direct.get_object(Bucket=bucket, Key="new")["Body"].read() == b"x" * 1000
    assert proxy.count("forwarded") == 3 and proxy.count() == 3


def test_drop_status_and_cut_as_the_client_sees_them(proxied) -> None:
    direct, client, proxy, bucket = proxied
    drop = proxy.arm("drop", count=1, method="GET")
    with pytest.raises(ConnectionClosedError):
        client.get_object(Bucket=bucket, Key="obj")
    assert drop.hits == 1 and drop not in proxy.faults                      # used up
    proxy.arm("status", count=1, status=503)
    with pytest.raises(ClientError) as err:
        client.get_object(Bucket=bucket, Key="obj")
    assert err.value.response["Error"]["Code"] == "SlowDown"
    proxy.arm("cut", count=1, method="GET", path=r"/obj$")
    resp = client.get_object(Bucket=bucket, Key="obj")                       # headers arrive, half the body
    with pytest.raises(Exception) as cut:
        resp["Body"].read()
    assert "IncompleteRead" in repr(cut.value) or "ResponseStreamingError" in type(cut.value).__name__
    assert client.get_object(Bucket=bucket, Key="obj")["Body"].read() == BODY      # healed by itself
    assert [proxy.count(a) for a in ("drop", "status", "cut", "forwarded")] == [1, 1, 1, 1]


def test_a_cut_put_was_stored_though_its_answer_was_lost(proxied) -> None:
    direct, client, proxy, bucket = proxied
    proxy.arm("cut", count=1, method="PUT")
    with pytest.raises(ConnectionClosedError):
        client.put_object(Bucket=bucket, Key="stored", Body=b"y" * 100)
    assert direct.get_object(Bucket=bucket, Key="stored")["Body"].read() == b"y" * 100


def test_after_and_path_choose_which_requests_and_call_runs_first(proxied) -> None:
    direct, client, proxy, bucket = proxied
    seen: list[tuple[str, str]] = []

    def overwrite(method: str, path: str) -> None:
        seen.append((method, path))
        direct.put_object(Bucket=bucket, Key="obj", Body=b"changed")

    hook = proxy.arm("call", count=1, after=1, method="GET", path=r"/obj$", action=overwrite)
    client.head_object(Bucket=bucket, Key="obj")                       # another method: not counted
    assert client.get_object(Bucket=bucket, Key="obj")["Body"].read() == BODY     # "after" lets one pass
    assert client.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"changed"
    assert seen == [("GET", f"/{bucket}/obj")] and hook.hits == 1
    with pytest.raises(ValueError):
        proxy.arm("call", count=1)                                     # a call fault needs an action
    with pytest.raises(ValueError):
        proxy.arm("refuse", count=3)                                   # nothing arrives to count


def test_refuse_closes_the_port_for_a_while_then_listens_on_the_same_one(proxied) -> None:
    direct, client, proxy, bucket = proxied
    port = proxy.listen_port
    fault = proxy.arm("refuse", seconds=2.0)
    with pytest.raises(ConnectionClosedError):                         # the request that set it off: no answer
        client.get_object(Bucket=bucket, Key="obj")
    time.sleep(0.3)
    with pytest.raises(EndpointConnectionError):                       # ECONNREFUSED
        client.get_object(Bucket=bucket, Key="obj")
    deadline = time.monotonic() + 10
    while True:
        try:
            assert client.get_object(Bucket=bucket, Key="obj")["Body"].read() == BODY
            break
        except EndpointConnectionError:
            assert time.monotonic() < deadline, "the proxy did not listen again"
            time.sleep(0.2)
    assert time.monotonic() - fault.started >= 2.0 and proxy.listen_port == port and not proxy.faults


def test_heal_ends_every_fault_at_once(proxied) -> None:
    direct, client, proxy, bucket = proxied
    proxy.arm("refuse", seconds=60)
    with pytest.raises(ConnectionClosedError):
        client.get_object(Bucket=bucket, Key="obj")
    proxy.arm("status", status=500)
    proxy.heal()
    assert client.get_object(Bucket=bucket, Key="obj")["Body"].read() == BODY
