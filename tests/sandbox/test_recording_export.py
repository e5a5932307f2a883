"""The sandbox's S3 recording export (POST /api/v2/sandbox/export) into a real moto server
over HTTP: the Genesys folder layout, the metadata's fields agree with the analytics details
query, and its sha256 is the audio's. Also GET /api/v2/organizations/me and the refusals."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
import requests
from moto.server import ThreadedMotoServer
from sandbox_http import login

from reconciler.sandbox.genesys_server import GenesysSandbox

BUCKET = "archive-under-test"
KEY = re.compile(
    r"^(?P<org>[^/]+)/year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/conversation_id=(?P<cid>[^/]+)/(?P<file>[^/]+)$"
)


@pytest.fixture(scope="module")
def s3_entry() -> Iterator[dict[str, str]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield {
        "url": f"http://{host}:{port}",
        "accessKeyId": "testing",
        "secretAccessKey": "testing",
        "region": "eu-west-1",
    }
    server.stop()


@pytest.fixture
def s3(s3_entry: dict[str, str]) -> Any:
    requests.post(f"{s3_entry['url']}/moto-api/reset", timeout=10)
    client = boto3.client(
        "s3",
        endpoint_url=s3_entry["url"],
        region_name=s3_entry["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return client


@pytest.fixture
def api(s3_entry: dict[str, str]) -> Iterator[httpx.Client]:
    with GenesysSandbox(archive_s3=s3_entry) as sandbox, login(sandbox.base_url) as client:
        yield client


def all_keys(s3: Any) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def details(api: httpx.Client, interval: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    number = 1
    while True:
        body = {"interval": interval, "paging": {"pageSize": 100, "pageNumber": number}}
        page = api.post("/api/v2/analytics/conversations/details/query", json=body).json()
        found |= {c["conversationId"]: c for c in page.get("conversations", [])}
        if len(page.get("conversations", [])) < 100:
            return found
        number += 1


def test_export_writes_the_layout_metadata_and_a_matching_sha256(api: httpx.Client, s3: Any) -> None:
    org = api.get("/api/v2/organizations/me").json()
    assert set(org) >= {"id", "name"}
    answer = api.post("/api/v2/sandbox/export", json={"bucket": BUCKET, "from": "2026-09-01", "to": "2026-09-30"})
    assert answer.status_code == 200, answer.text
    exported = answer.json()
    assert exported["bucket"] == BUCKET and exported["orgId"] == org["id"]
    platform = details(api, "2026-09-01T00:00:00Z/2026-10-01T00:00:00Z")
    assert exported["exported"] == len(platform) > 0

    keys = all_keys(s3)
    assert len(keys) == 2 * len(platform)
    folders: dict[str, set[str]] = {}
    for key in keys:
        match = KEY.match(key)
        assert match is not None, key
        assert match["org"] == org["id"]
        folders.setdefault(match["cid"], set()).add(match["file"])
    assert set(folders) == set(platform)

    for cid, files in folders.items():
        (audio_name,) = files - {"_metadata.json"}
        prefix = next(k for k in keys if k.endswith(f"conversation_id={cid}/_metadata.json")).rsplit("/", 1)[0]
        meta = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}/_metadata.json")["Body"].read())
        audio = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{audio_name}")["Body"].read()
        conv = platform[cid]
        start = conv["conversationStart"]
        assert prefix.endswith(
            f"year={start[:4]}/month={start[5:7]}/day={start[8:10]}/hour={start[11:13]}/conversation_id={cid}"
        )
        assert meta["conversationId"] == cid and meta["fileName"] == audio_name
        assert (meta["startTime"], meta["endTime"]) == (start, conv["conversationEnd"])
        assert {(p["id"], p["purpose"], p.get("userId")) for p in meta["participants"]} == {
            (p["participantId"], p["purpose"], p.get("userId")) for p in conv["participants"]
        }
        assert meta["sha256"] == hashlib.sha256(audio).hexdigest()
        assert 1000 < len(audio) < 10_000


def test_export_is_deterministic(api: httpx.Client, s3: Any) -> None:
    body = {"bucket": BUCKET, "from": "2026-10-01", "to": "2026-10-07"}
    api.post("/api/v2/sandbox/export", json=body).raise_for_status()
    first = {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in all_keys(s3)}
    api.post("/api/v2/sandbox/export", json=body).raise_for_status()
    assert {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in all_keys(s3)} == first


REFUSALS = [
    ("no bucket named", {}, 400, "bucket is required"),
    ("a date that is not a date", {"bucket": BUCKET, "from": "yesterday"}, 400, "from must be a date"),
    ("from after to", {"bucket": BUCKET, "from": "2026-10-02", "to": "2026-10-01"}, 400, "from must not be after to"),
    ("bucket that does not exist", {"bucket": "no-such-bucket"}, 404, "no-such-bucket"),
]


@pytest.mark.parametrize(("body", "status", "says"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_export_refusals(api: httpx.Client, s3: Any, body: dict[str, str], status: int, says: str) -> None:
    answer = api.post("/api/v2/sandbox/export", json=body)
    assert answer.status_code == status
    assert says in answer.json()["message"]


def test_export_without_s3_is_409() -> None:
    with GenesysSandbox() as sandbox, login(sandbox.base_url) as client:
        answer = client.post("/api/v2/sandbox/export", json={"bucket": BUCKET})
    assert answer.status_code == 409
    assert "no S3 service" in answer.json()["message"]
