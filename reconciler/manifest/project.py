"""The project file, `recon.yaml` at a manifest root: which estate to talk to and where
state lives. It is not a manifest (no apiVersion/kind) and has its own strict model.

    target: sandbox            # or the name of an entry under targets
    targets:
      prod-eu:
        genesys: {region: eu-west-1, clientId: env:ID, clientSecret: env:SECRET}
        aws: {region: eu-west-1, profile: trading-recordings}
    state: {backend: local, path: .recon/state.json}   # or {backend: s3, bucket, key, region}

Called by: reconciler.manifest.loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictInt, ValidationError, model_validator

from reconciler import secretrefs
from reconciler.diagnostics import Diagnostic, DiagnosticList, Location
from reconciler.manifest.explain import diagnostics_from, field_path, located
from reconciler.manifest.kinds.archive import BucketName
from reconciler.manifest.kinds.base import AwsRegion, FieldError, GenesysRegion, Model, suggest
from reconciler.manifest.kinds.text import Line, Name
from reconciler.manifest.outbound import HttpsUrl, SecretReference, check_link_local
from reconciler.manifest.secrets_scan import find_secrets
from reconciler.manifest.source import SourceProblem, read_text
from reconciler.manifest.yamlsafe import YamlProblem, parse_documents

SANDBOX = "sandbox"
MAX_RATE_PER_MINUTE = 10_000
"""Far above Genesys Cloud's documented rate limits (300 requests a minute for a
client-credentials token by default, raised on request; 3,000 for a user:
https://developer.genesys.cloud/organization/organization/limits#platform-api), low enough
that the rate limiter's arithmetic stays exact."""


def _check_client_id(value: str) -> str:
    problem = secretrefs.reference_problem(value)
    if problem is not None:
        raise ValueError(f"{problem}; {secretrefs.REFERENCE_HINT}")
    return value


class GenesysTarget(Model):
    region: GenesysRegion
    """The org's Genesys Cloud region."""
    clientId: Annotated[Line, Field(min_length=1), AfterValidator(_check_client_id)]
    """OAuth client id (not a secret; env:NAME also works)."""
    clientSecret: SecretReference
    """OAuth client secret: env:NAME or file:PATH, never the value."""
    apiUrl: HttpsUrl | None = None
    """Override the region's API base URL (a private link, a proxy, or the embedded sandbox):
    https:// (http:// only to loopback). The OAuth token is sent to this host only."""
    loginUrl: HttpsUrl | None = None
    """Override the region's login base URL (defaults to apiUrl when that is given). The
    client secret is sent to this host only."""
    allowLinkLocal: bool = False
    """Allow apiUrl/loginUrl to be link-local addresses (cloud metadata addresses never are)."""
    ratePerMinute: StrictInt = Field(default=300, ge=1, le=MAX_RATE_PER_MINUTE)
    """Requests per minute recon allows itself against this org (shared by all providers;
    1 to 10,000: Genesys Cloud allows a client-credentials token 300 a minute unless raised)."""

    @model_validator(mode="after")
    def _references_and_endpoints(self) -> GenesysTarget:
        check_link_local(self.apiUrl, ("apiUrl",), "http", allowed=self.allowLinkLocal)
        check_link_local(self.loginUrl, ("loginUrl",), "http", allowed=self.allowLinkLocal)
        return self


class AwsTarget(Model):
    region: AwsRegion
    """Default AWS region for API calls."""
    profile: Line | None = None
    """Named AWS profile; without it the standard credential chain applies."""
    endpointUrl: HttpsUrl | None = None
    """Custom S3 endpoint (an S3-compatible store): https:// (http:// only to loopback);
    leave unset for AWS."""
    allowLinkLocal: bool = False
    """Allow endpointUrl to be a link-local address (cloud metadata addresses never are)."""

    @model_validator(mode="after")
    def _endpoint(self) -> AwsTarget:
        check_link_local(self.endpointUrl, ("endpointUrl",), "http", allowed=self.allowLinkLocal)
        return self


class Target(Model):
    genesys: GenesysTarget | None = None
    aws: AwsTarget | None = None


class StateConfig(Model):
    backend: Literal["local", "s3"] = "local"
    """local: a JSON file; s3: an object in a versioned bucket."""
    path: str = ".recon/state.json"
    """local backend: the state file, relative to the project file."""
    bucket: BucketName | None = None
    """s3 backend: the bucket."""
    key: Annotated[Line, Field(max_length=1024)] | None = None
    """s3 backend: the object key."""
    region: AwsRegion | None = None
    """s3 backend: the bucket's region."""

    @model_validator(mode="after")
    def _s3_needs_bucket_and_key(self) -> StateConfig:
        if self.backend == "s3" and not (self.bucket and self.key):
            raise ValueError("the s3 state backend needs bucket and key")
        return self


class Project(Model):
    target: Name = SANDBOX
    """The target in use: sandbox (the embedded estate) or a name under targets."""
    targets: dict[Name, Target] = Field(default_factory=dict)
    """Named estates."""
    state: StateConfig = Field(default_factory=StateConfig)
    """Where recon keeps state."""

    @model_validator(mode="after")
    def _target_exists(self) -> Project:
        if self.target != SANDBOX and self.target not in self.targets:
            raise FieldError(
                ("target",),
                f"target '{self.target}' is not defined under targets"
                f"{suggest(self.target, self.targets)}; define it, or write target: {SANDBOX}",
            )
        return self


def load_project(path: Path, shown: str, problems: DiagnosticList) -> Project | None:
    """Read and validate the project file; problems are added to `problems`."""
    try:
        documents = parse_documents(read_text(path))
    except (SourceProblem, YamlProblem) as exc:
        problems.add(located(exc, shown))
        return None
    if not documents:
        return Project()
    document = documents[0]
    if len(documents) > 1:
        problems.add(
            Diagnostic(
                "project.documents",
                "the project file must hold one document",
                Location(shown, documents[1].line, 1),
                hint="remove the extra '---' documents",
            )
        )
    found_secret = False
    for where, what in find_secrets(document.data):
        found_secret = True
        line, column = document.position(where)
        problems.add(
            Diagnostic(
                "secret.literal",
                f"this looks like {what}; the project file must not contain secrets",
                Location(shown, line, column),
                field_path(where),
                "write env:NAME or file:PATH where a secret is expected",
            )
        )
    try:
        project = Project.model_validate(document.data)
    except ValidationError as exc:
        problems.extend(diagnostics_from(exc, Project, document, shown))
        return None
    return None if found_secret else project
