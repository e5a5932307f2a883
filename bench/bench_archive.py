"""Benchmark: observing 500 archive buckets, recon vs Cloud Custodian, on one moto server.

What it measures: the wall time to check three properties of every archive bucket (Object
Lock default retention in COMPLIANCE mode, SSE-KMS default encryption, all four public
access block flags) on the same buckets of the same S3 endpoint, by

- recon       `ArchiveBucketProvider.observe_all` for every bucket (refs carry the bucket
              name as id, so no `expand` is needed), from `aws_providers(AwsConfig(...))`;
- c7n         Cloud Custodian (`custodian run`, PyPI c7n 0.9.53) with one aws.s3 policy of
              three filters: lock-configuration (Rule.DefaultRetention.Mode = COMPLIANCE),
              bucket-encryption (state true, crypto aws:kms), check-public-block (four flags
              true). Its defaults are kept: the S3 resource augments every bucket with its
              get_* table before the filters run; its resource cache is turned off
              (`--cache-period 0`, a fresh cache file) so every run reads the endpoint.

One moto server (`python -m moto.server`) runs in its own process, so it does not share a
GIL with either side; both sides run as child processes of this script, one at a time. The
server gets N buckets (default 500), populated with boto3 (not timed): index % 20 = 0, 1 →
GOVERNANCE instead of COMPLIANCE (10 %), 2 → AES256 instead of KMS (5 %), 3 → no public
access block (5 %), otherwise compliant (COMPLIANCE 7y, SSE-KMS with one key behind the alias
alias/recon-bench-archive, all four flags): 80 % pass all three.

- recon_s     `observe_all` alone, timed inside the child (median of RUNS); the child's
              process wall (interpreter, imports, client set-up) is printed beside it;
- c7n_s       the `custodian run` process wall (median of RUNS); `custodian version`
              (interpreter + imports) is timed too, to show startup vs work;
- ratio       c7n_s / recon_s; also printed process wall against process wall;
- found       recon: buckets with objectLock.mode COMPLIANCE, with encryption.kmsKeyAlias,
              with publicAccess blocked, and with all three; c7n: the buckets its policy
              matched (resources.json). `agree` compares the two sets of bucket names.
              One untimed extra c7n run with one policy per filter gives its per-filter counts.

c7n pins exact versions (boto3 among them) that conflict with the project's venv, so it lives
in its own venv, bench/.venv-c7n (gitignored), created on first run (`python3 -m venv` +
`pip install c7n==0.9.53`); the install time is printed, not compared. c7n reaches moto
through boto3's AWS_ENDPOINT_URL; its account id comes from moto's STS.

Output: figures, then one line

    BENCH archive buckets=500 recon_s=X c7n_s=X ratio=X recon_found=N c7n_found=N
    agree=true|false faster=true|false

Run: `.venv/bin/python bench/bench_archive.py [--buckets N] [--runs N]` (or `make bench`).
Exit 0 when both agree and recon is faster, 2 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
C7N_VENV = BENCH_DIR / ".venv-c7n"
C7N_VERSION = "0.9.53"
REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"  # moto's default account
KEY_ALIAS = "alias/recon-bench-archive"
PREFIX = "recon-bench-archive-"
BUCKETS = 500
RUNS = 3
POPULATE_WORKERS = 16
READY_TIMEOUT_S = 30.0

POLICY = """\
policies:
  - name: archive-compliance
    resource: aws.s3
    filters:
      - type: lock-configuration
        key: Rule.DefaultRetention.Mode
        value: COMPLIANCE
      - type: bucket-encryption
        state: true
        crypto: aws:kms
      - type: check-public-block
        BlockPublicAcls: true
        IgnorePublicAcls: true
        BlockPublicPolicy: true
        RestrictPublicBuckets: true
"""

PER_FILTER_POLICY = """\
policies:
  - name: only-lock-compliance
    resource: aws.s3
    filters:
      - type: lock-configuration
        key: Rule.DefaultRetention.Mode
        value: COMPLIANCE
  - name: only-kms
    resource: aws.s3
    filters:
      - type: bucket-encryption
        state: true
        crypto: aws:kms
  - name: only-public-block
    resource: aws.s3
    filters:
      - type: check-public-block
        BlockPublicAcls: true
        IgnorePublicAcls: true
        BlockPublicPolicy: true
        RestrictPublicBuckets: true
"""


# -- the moto server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server(log: Path) -> Iterator[str]:
    """A moto server in its own process on a free loopback port; yields its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto server exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto server not ready after {READY_TIMEOUT_S:g} s")
            time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- population (not timed) ---------------------------------------------------------------


def bucket_names(count: int) -> list[str]:
    return [f"{PREFIX}{index:04d}" for index in range(count)]


def variant(index: int) -> str:
    """compliant (80 %), governance (10 %), aes256 (5 %), no-pab (5 %)."""
    return {0: "governance", 1: "governance", 2: "aes256", 3: "no-pab"}.get(index % 20, "compliant")


def populate(endpoint: str, count: int) -> dict[str, int]:
    """`count` archive buckets in the mix of `variant`; returns how many of each."""
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415
    from botocore.config import Config  # type: ignore[import-untyped]  # noqa: PLC0415

    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    config = Config(max_pool_connections=POPULATE_WORKERS + 4, s3={"addressing_style": "path"})
    s3 = session.client("s3", endpoint_url=endpoint, config=config)
    kms = session.client("kms", endpoint_url=endpoint, config=config)
    key_arn = kms.create_key(Description="recon bench archive key")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=KEY_ALIAS, TargetKeyId=key_arn)

    def one(index_name: tuple[int, str]) -> str:
        index, name = index_name
        kind = variant(index)
        s3.create_bucket(
            Bucket=name,
            CreateBucketConfiguration={"LocationConstraint": REGION},
            ObjectLockEnabledForBucket=True,
        )
        mode = "GOVERNANCE" if kind == "governance" else "COMPLIANCE"
        s3.put_object_lock_configuration(
            Bucket=name,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": mode, "Years": 7}},
            },
        )
        default = (
            {"SSEAlgorithm": "AES256"} if kind == "aes256" else {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
        )
        s3.put_bucket_encryption(
            Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": default}]}
        )
        if kind != "no-pab":
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
        return kind

    with ThreadPoolExecutor(POPULATE_WORKERS) as pool:
        kinds = list(pool.map(one, enumerate(bucket_names(count))))
    s3.close()
    kms.close()
    return {kind: kinds.count(kind) for kind in ("compliant", "governance", "aes256", "no-pab")}


# -- recon (a child process) --------------------------------------------------------------


def recon_child(endpoint: str, count: int) -> dict[str, Any]:
    """One observe pass in this (child) process: the observe time and what it found."""
    from reconciler.providers.aws import AwsConfig, aws_providers  # noqa: PLC0415
    from reconciler.providers.base import ResourceRef  # noqa: PLC0415

    async def run() -> dict[str, Any]:
        started = time.perf_counter()
        providers = aws_providers(
            AwsConfig(
                region=REGION,
                endpoint_url=endpoint,
                access_key_id="testing",
                secret_access_key="testing",
                deny_insecure_transport=False,
            )
        )
        setup_s = time.perf_counter() - started
        try:
            provider: Any = providers.get("ArchiveBucket")
            refs = [ResourceRef("ArchiveBucket", name, id=name) for name in bucket_names(count)]
            started = time.perf_counter()
            observed = await provider.observe_all(refs)
            observe_s = time.perf_counter() - started
            requests = providers.request_counter() if providers.request_counter else -1
        finally:
            await providers.aclose()
        compliance, kms, blocked, passing = set(), set(), set(), set()
        for item in observed.values():
            attributes = item.attributes
            name = str(attributes["bucketName"])
            if (attributes.get("objectLock") or {}).get("mode") == "COMPLIANCE":
                compliance.add(name)
            if (attributes.get("encryption") or {}).get("kmsKeyAlias"):
                kms.add(name)
            if attributes.get("publicAccess") == "blocked":
                blocked.add(name)
        passing = compliance & kms & blocked
        return {
            "setup_s": setup_s,
            "observe_s": observe_s,
            "observed": len(observed),
            "requests": requests,
            "compliance": len(compliance),
            "kms": len(kms),
            "blocked": len(blocked),
            "passing": sorted(passing),
        }

    return asyncio.run(run())


def run_recon(endpoint: str, count: int) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--recon-child", endpoint, "--buckets", str(count)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


# -- Cloud Custodian ----------------------------------------------------------------------


def ensure_c7n() -> float | None:
    """Create bench/.venv-c7n with c7n when missing; the install time, or None if it was there."""
    custodian = C7N_VENV / "bin" / "custodian"
    if custodian.exists():
        return None
    print(f"installing c7n=={C7N_VERSION} into {C7N_VENV} (first run only; not part of the comparison) ...")
    started = time.perf_counter()
    subprocess.run(["python3", "-m", "venv", str(C7N_VENV)], check=True)
    pip = [str(C7N_VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", f"c7n=={C7N_VERSION}"]
    done = subprocess.run(pip, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip install c7n=={C7N_VERSION} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - started


def c7n_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


def custodian_version(endpoint: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(C7N_VENV / "bin" / "custodian"), "version"], env=c7n_env(endpoint), capture_output=True, check=True
    )
    return time.perf_counter() - started


def run_custodian(endpoint: str, policy: Path, out: Path) -> dict[str, Any]:
    """One `custodian run` (no resource cache); its process wall, matched buckets per policy."""
    command = [
        str(C7N_VENV / "bin" / "custodian"),
        "run",
        "-s",
        str(out),
        "--region",
        REGION,
        "--cache",
        str(out / "cache.pkl"),
        "--cache-period",
        "0",
        str(policy),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, check=False, env=c7n_env(endpoint), capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    (out / "stderr.log").write_text(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"custodian run exited {done.returncode}:\n{done.stderr[-3000:]}")
    matched: dict[str, list[str]] = {}
    for resources in sorted(out.glob("*/resources.json")):
        matched[resources.parent.name] = sorted(str(b["Name"]) for b in json.loads(resources.read_text()))
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line or "Traceback" in line]
    return {"wall_s": wall_s, "matched": matched, "errors": errors, "log_tail": done.stderr.strip().splitlines()[-3:]}


# -- main ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buckets", type=int, default=BUCKETS)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--recon-child", metavar="ENDPOINT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.recon_child:
        print(json.dumps(recon_child(args.recon_child, args.buckets)))
        return 0
    count, runs = args.buckets, args.runs

    install_s = ensure_c7n()
    if install_s is not None:
        print(f"c7n install: {install_s:.1f} s")
    with tempfile.TemporaryDirectory(prefix="recon-bench-archive-") as folder:
        root = Path(folder)
        with moto_server(root / "moto.log") as endpoint:
            print(f"moto server: {endpoint} (own process)")
            started = time.perf_counter()
            mix = populate(endpoint, count)
            print(f"populated {count} buckets in {time.perf_counter() - started:.1f} s (not timed): {mix}")
            expected = mix["compliant"]

            recon_runs = [run_recon(endpoint, count) for _ in range(runs)]

            policy = root / "policy.yml"
            policy.write_text(POLICY)
            startup_s = statistics.median(custodian_version(endpoint) for _ in range(runs))
            c7n_runs = []
            for index in range(runs):
                out = root / f"c7n-out-{index}"
                out.mkdir()
                c7n_runs.append(run_custodian(endpoint, policy, out))
            per_filter_policy = root / "per-filter.yml"
            per_filter_policy.write_text(PER_FILTER_POLICY)
            (root / "c7n-per-filter").mkdir()
            per_filter = run_custodian(endpoint, per_filter_policy, root / "c7n-per-filter")

    recon_s = statistics.median(r["observe_s"] for r in recon_runs)
    recon_process_s = statistics.median(r["process_s"] for r in recon_runs)
    recon_setup_s = statistics.median(r["setup_s"] for r in recon_runs)
    last = recon_runs[-1]
    recon_passing = set(last["passing"])
    c7n_s = statistics.median(r["wall_s"] for r in c7n_runs)
    c7n_passing = set(c7n_runs[-1]["matched"].get("archive-compliance", []))
    stable = all(set(r["passing"]) == recon_passing for r in recon_runs) and all(
        set(r["matched"].get("archive-compliance", [])) == c7n_passing for r in c7n_runs
    )
    agree = recon_passing == c7n_passing and stable
    ratio = c7n_s / recon_s
    faster = recon_s < c7n_s

    print()
    print(f"recon  observe_all, {runs} runs: " + ", ".join(f"{r['observe_s']:.3f}" for r in recon_runs) + " s")
    print(
        f"       median {recon_s:.3f} s; child process wall median {recon_process_s:.3f} s"
        f" (interpreter + imports + {recon_setup_s:.3f} s client set-up + observe)"
    )
    print(f"       {last['observed']} buckets observed, {last['requests']} HTTP requests per pass")
    print(
        f"       found: COMPLIANCE {last['compliance']}, KMS {last['kms']}, blocked {last['blocked']},"
        f" all three {len(recon_passing)} (populated compliant: {expected})"
    )
    print(f"c7n    custodian run, {runs} runs: " + ", ".join(f"{r['wall_s']:.3f}" for r in c7n_runs) + " s")
    print(f"       median {c7n_s:.3f} s (process wall); `custodian version` (startup) median {startup_s:.3f} s")
    print(f"       matched (all three filters): {len(c7n_passing)} buckets")
    counts = {name: len(found) for name, found in per_filter["matched"].items()}
    print(f"       per filter (one untimed extra run, {per_filter['wall_s']:.1f} s): {counts}")
    errors = [e for r in [*c7n_runs, per_filter] for e in r["errors"]]
    print(f"       ERROR lines in its logs: {len(errors)}" + (f"; first: {errors[0]}" if errors else ""))
    print(f"       last log lines: {c7n_runs[-1]['log_tail']}")
    print()
    print(f"ratio c7n / recon (observe): {ratio:.1f}x")
    print(
        f"ratio process wall against process wall: {c7n_s / recon_process_s:.1f}x;"
        f" excluding startup on both sides: {(c7n_s - startup_s) / recon_s:.1f}x"
    )
    print(f"agree={str(agree).lower()} (same bucket names pass all three on both sides, stable over runs: {stable})")
    print(
        f"BENCH archive buckets={count} recon_s={recon_s:.3f} c7n_s={c7n_s:.3f} ratio={ratio:.1f} "
        f"recon_found={len(recon_passing)} c7n_found={len(c7n_passing)} agree={str(agree).lower()} "
        f"faster={str(faster).lower()}"
    )
    return 0 if agree and faster else 2


if __name__ == "__main__":
    sys.exit(main())
