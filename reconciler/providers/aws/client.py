"""The boto3 client layer: one Session, S3 and KMS clients per region, a bounded thread pool.

boto3 is synchronous; recon's providers are async. `AwsClient.run` runs a sync function in
the client's own thread pool (bounded, `AwsConfig.concurrency` workers) so that many bucket
reads proceed at once without flooding the endpoint. `AwsClient.call` is the one place a
botocore call is made: it maps every botocore failure into the recon error tree
(reconciler.providers.aws.errors) and turns the error codes the caller names into `None`
("absent": NoSuchTagSet, NoSuchBucketPolicy ...).

Sessions are not thread-safe, clients are: clients are built up front for the configured
region, and under a lock for any other region a bucket lives in. Retries are botocore's
(standard or adaptive mode, `max_attempts`); the connection pool is sized to the pool of
threads so no call waits for a connection.

Called by: the providers of this package and `aws_providers`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from reconciler.providers.aws.errors import translate

T = TypeVar("T")

DEFAULT_CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class AwsConfig:
    """Where and as whom recon talks to AWS.

    `endpoint_url` points S3 and KMS at an S3-compatible endpoint (a moto server in the
    sandbox); `profile` picks a named profile; `access_key_id`/`secret_access_key` give
    explicit credentials (the sandbox's). With none of them, boto3's default chain applies."""

    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    max_attempts: int = 5
    retry_mode: str = "standard"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    deny_insecure_transport: bool = True
    """Archive bucket policies deny every request not made over TLS. Only the sandbox turns
    this off: moto ignores policy conditions, so the statement would deny every request."""

    def __repr__(self) -> str:  # never show the secret
        return f"AwsConfig(region={self.region!r}, endpoint_url={self.endpoint_url!r}, profile={self.profile!r})"


class AwsClient:
    """S3 and KMS clients for one AWS account, shared by every AWS provider of a target."""

    def __init__(self, config: AwsConfig) -> None:
        self.config = config
        self._session = boto3.Session(
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            aws_session_token=config.session_token,
            profile_name=config.profile,
            region_name=config.region,
        )
        self._botocore_config = Config(
            retries={"max_attempts": config.max_attempts, "mode": config.retry_mode},
            max_pool_connections=config.concurrency + 8,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            s3={"addressing_style": "path"} if config.endpoint_url else {},
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._requests = 0
        self._count_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="recon-aws")
        self._closed = False
        self.s3(config.region)
        self.kms(config.region)

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (retries included)."""
        return self._requests

    def _count(self, **_: Any) -> None:
        with self._count_lock:
            self._requests += 1

    def _client(self, service: str, region: str) -> Any:
        key = (service, region)
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    try:
                        client = self._session.client(
                            service,
                            region_name=region,
                            endpoint_url=self.config.endpoint_url,
                            config=self._botocore_config,
                        )
                    except BotoCoreError as exc:
                        raise translate(exc, service=service, operation="CreateClient") from exc
                    client.meta.events.register("before-send", self._count)
                    self._clients[key] = client
        return client

    def s3(self, region: str | None = None) -> Any:
        """The S3 client for `region` (default: the configured region)."""
        return self._client("s3", region or self.config.region)

    def kms(self, region: str | None = None) -> Any:
        """The KMS client for `region` (default: the configured region)."""
        return self._client("kms", region or self.config.region)

    @staticmethod
    def read_limited(body: Any, limit: int) -> bytes | None:
        """At most `limit` bytes of an S3 object's streaming body (closed afterwards); None
        when the object is larger: recon never reads an unbounded remote body."""
        try:
            data: bytes = body.read(limit + 1)
        finally:
            body.close()
        return None if len(data) > limit else data

    @staticmethod
    def call(client: Any, operation: str, *, bucket: str = "", absent: Iterable[str] = (), **kwargs: Any) -> Any:
        """`client.<operation>(**kwargs)` (operation in snake_case), synchronously.

        Returns None when AWS answers with one of the `absent` error codes; raises the recon
        error (AwsError subclass) for any other failure."""
        method = getattr(client, operation)
        service = client.meta.service_model.signing_name
        try:
            return method(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in set(absent):
                return None
            raise translate(exc, service=service, operation=exc.operation_name, bucket=bucket) from exc
        except BotoCoreError as exc:
            op_name = client.meta.method_to_api_mapping.get(operation, operation)
            raise translate(exc, service=service, operation=op_name, bucket=bucket) from exc

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in the client's bounded thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, function, *args)

    async def aclose(self) -> None:
        """Close the clients' connections and the thread pool. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True)
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
