"""A client of the prediction API, calling it as a user's code does: the API key in `x-api-key` for the
usage plan, and the caller's own authorization, a SigV4 signature of each request (service `execute-api`,
botocore's signer) for `apiAuthorization` iam, or a Cognito ID token in `Authorization` for cognito."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as SigningCredentials

from rehearsal.moto_server import Credentials

SERVICE = "execute-api"
JSON = "application/json"
# A deployed stage's invoke URL: https://<api id>.execute-api.<region>.amazonaws.com/<stage>.
_INVOKE_URL = re.compile(r"^https://[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/")


def region_of(url: str) -> str | None:
    """The region of a deployed API's invoke URL, None for another URL."""
    match = _INVOKE_URL.match(url)
    return match[1] if match else None


def signed_headers(
    method: str, url: str, body: bytes | None, headers: dict[str, str], credentials: Credentials, region: str
) -> dict[str, str]:
    """`headers` plus the SigV4 ones (Authorization, X-Amz-Date, X-Amz-Security-Token for a session)."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(
        SigningCredentials(
            credentials.access_key_id, credentials.secret_access_key, credentials.session_token
        ),
        SERVICE,
        region,
    ).add_auth(request)
    return dict(request.headers.items())


@dataclass(frozen=True)
class ApiClient:
    url: str
    api_key: str
    region: str
    # Exactly one of them, as the stack's apiAuthorization asks: a signer's keys (iam) or an ID token.
    credentials: Credentials | None = None
    id_token: str | None = None

    def __post_init__(self) -> None:
        if (self.credentials is None) == (self.id_token is None):
            raise ValueError("an API client signs (credentials) or sends an ID token, one of the two")

    def headers(self, method: str, url: str, body: bytes | None) -> dict[str, str]:
        headers = {"x-api-key": self.api_key, "Content-Type": JSON}
        if self.id_token is not None:
            return {**headers, "Authorization": self.id_token}
        assert self.credentials is not None
        return signed_headers(method, url, body, headers, self.credentials, self.region)

    def call(self, method: str, path: str, body: Any | None = None) -> tuple[int, dict[str, Any]]:
        """One HTTP request to the API; its status and JSON answer."""
        url = f"{self.url}{path}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the stack's own API, http only on 127.0.0.1
            url, data=data, method=method, headers=self.headers(method, url, data)
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
                return answer.status, json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ApiClient:
        state = json.loads(text)
        credentials = state.pop("credentials")
        return cls(**state, credentials=Credentials(**credentials) if credentials else None)
