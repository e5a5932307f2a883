"""Issue 17, class 6 (and 7) in the archive: `_metadata.json` objects are somebody else's
JSON. A 100,000-deep or oversized document must be reported as not JSON (the integrity
check then names it bad-metadata), not crash `recon verify-archive` with a RecursionError or
read gigabytes; a key that only looks like the export's (a trailing newline, fullwidth
digits) is not taken for it. Against a moto S3 server over HTTP on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator

import pytest
import requests
from moto_http import moto_server

from reconciler.providers.archive_layout import parse_key
from reconciler.providers.aws import AwsClient, AwsConfig
from reconciler.providers.aws.archive_reader import MAX_METADATA_BYTES, read_archive

REGION = "eu-west-1"
BUCKET = "hostile-archive"
ORG = "org-1"
FOLDER = f"{ORG}/year=2026/month=07/day=01/hour=10/conversation_id="
DAY = dt.date(2026, 7, 1)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def client(moto_url: str) -> Iterator[AwsClient]:
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    aws = AwsClient(
        AwsConfig(region=REGION, endpoint_url=moto_url, access_key_id="testing", secret_access_key="testing")
    )
    aws.s3().create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield aws
    asyncio.run(aws.aclose())


def _put(client: AwsClient, key: str, body: bytes) -> None:
    client.s3().put_object(Bucket=BUCKET, Key=key, Body=body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="100k-deep-array"),
        pytest.param(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, id="100k-deep-object"),
        pytest.param(b'{"pad": "' + b"x" * (MAX_METADATA_BYTES + 10) + b'"}', id="over-the-size-limit"),
        pytest.param(b"\xff\xfe not utf-8", id="not-utf-8"),
    ],
)
def test_hostile_metadata_reads_as_not_json(client: AwsClient, body: bytes) -> None:
    _put(client, f"{FOLDER}c1/_metadata.json", body)
    _put(client, f"{FOLDER}c1/audio.opus", b"audio")
    found = asyncio.run(read_archive(client, BUCKET, REGION, ORG, DAY, DAY))
    assert found.metadata == {f"{FOLDER}c1/_metadata.json": None}
    assert set(found.hashes) == {f"{FOLDER}c1/audio.opus"}


def test_ordinary_metadata_is_read(client: AwsClient) -> None:
    _put(client, f"{FOLDER}c1/_metadata.json", json.dumps({"conversationId": "c1"}).encode())
    found = asyncio.run(read_archive(client, BUCKET, REGION, ORG, DAY, DAY))
    assert found.metadata == {f"{FOLDER}c1/_metadata.json": {"conversationId": "c1"}}


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(f"{FOLDER}c1/_metadata.json\n", id="trailing-newline"),
        pytest.param(
            f"{ORG}/year=２０２６/month=07/day=01/hour=10/conversation_id=c1/_metadata.json", id="fullwidth-year"
        ),
        pytest.param(f"{FOLDER}c1\x07/_metadata.json", id="control-in-conversation-id"),
    ],
)
def test_a_key_that_only_looks_like_the_exports_is_not_parsed(key: str) -> None:
    assert parse_key(key) is None
    assert parse_key(key.replace("\n", "").replace("\x07", "").replace("２０２６", "2026")) is not None
