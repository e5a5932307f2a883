"""OAuth for the Genesys sandbox: the client-credentials token endpoint and bearer checks.

`POST /oauth/token` (form grant_type=client_credentials, `Authorization: Basic base64(id:secret)`)
-> 200 {access_token, token_type: "bearer", expires_in: 86400}; a wrong id or secret -> 401
{"error": "invalid_client", ...}; another grant type -> 400 {"error": "unsupported_grant_type"}.
Every other /api/v2 call needs `Authorization: Bearer <issued, unexpired token>`, else 401
{"code": "bad.credentials"}. Tokens live in memory: a restarted sandbox needs a new login.

Called by: reconciler.sandbox.genesys_server. Imports only the stdlib and its siblings.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from urllib.parse import parse_qsl

from reconciler.sandbox.transport import Response, json_response
from reconciler.sandbox.wire import ApiError

TOKEN_LIFETIME_S = 86400


class TokenIssuer:
    """Issues and checks bearer tokens for one client id/secret pair. Thread-safe."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}

    def token(self, method: str, headers: dict[str, str], raw_body: bytes) -> Response:
        """Answer `/oauth/token`. `headers` have lower-case names."""
        if method != "POST":
            raise ApiError(405, "method.not.allowed", "use POST /oauth/token")
        form = dict(parse_qsl(raw_body.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            message = "only client_credentials"
            body = {"error": "unsupported_grant_type", "description": message, "error_description": message}
            return json_response(400, body)
        auth = headers.get("authorization", "")
        try:
            client_id, _, secret = (
                base64.b64decode(auth.removeprefix("Basic ").strip(), validate=True).decode().partition(":")
            )
        except (ValueError, UnicodeDecodeError):
            client_id = secret = ""
        if not auth.startswith("Basic ") or (client_id, secret) != (self.client_id, self.client_secret):
            message = "client not found"
            return json_response(401, {"error": "invalid_client", "description": message, "error_description": message})
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + TOKEN_LIFETIME_S
        return json_response(200, {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_LIFETIME_S})

    def authenticate(self, headers: dict[str, str]) -> None:
        """Raise ApiError 401 unless the request carries a bearer token this issuer gave out."""
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise ApiError(401, "bad.credentials", "No authentication bearer token specified in authorization header.")
        with self._lock:
            expiry = self._tokens.get(auth[7:].strip())
        if expiry is None or expiry < time.monotonic():
            raise ApiError(401, "bad.credentials", "Invalid login credentials.")
