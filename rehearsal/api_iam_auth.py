"""IAM authorization of a method (AWS_IAM), as API Gateway applies it to a request.

1. Authentication: the request carries a Signature Version 4 `Authorization` header for service
   `execute-api`; its access key id names a caller moto issued (an IAM user's key, or a role session's,
   whose `X-Amz-Security-Token` must be sent too); the signature is recomputed with that caller's secret
   key by botocore's own signer over the headers the request says it signed, and must be equal; the
   signing time must be within 5 minutes of now ("Elements of an AWS API request signature").
2. Authorization: `execute-api:Invoke` on the method's ARN,
   `arn:<partition>:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/<path>`, judged with the
   caller's identity policies (inline, attached managed and, for users, their groups') by
   `rehearsal.iam_policy`, the evaluator the IAM-exactness tests use: an explicit Deny wins, then an
   Allow, else denied.

Refusals are API Gateway's (`rehearsal.api_responses`). Where AWS answers a malformed scope with a more
specific message (a wrong region or service in the Credential), the local gateway answers the signature
mismatch that the recomputed signature gives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from rehearsal.api_responses import (
    access_denied,
    incomplete_signature,
    invalid_security_token,
    missing_authentication_token,
    signature_expired,
    signature_mismatch,
)
from rehearsal.iam_policy import Policy

SERVICE = "execute-api"
INVOKE = "execute-api:Invoke"
ALGORITHM = "AWS4-HMAC-SHA256"
# "the signature ... is valid for five minutes" from its X-Amz-Date (SigV4 "Elements of an AWS API
# request signature"); API Gateway answers a request outside it "Signature expired".
MAX_SKEW = timedelta(minutes=5)
AMZ_DATE = "%Y%m%dT%H%M%SZ"
_PARAMETERS = ("Credential", "SignedHeaders", "Signature")
_PAIR = re.compile(r"^([A-Za-z]+)=(.*)$")


@dataclass(frozen=True)
class Caller:
    """An identity that signs requests: its ARN, its keys, its identity policies' documents."""

    arn: str
    account_id: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None
    policies: tuple[str, ...]


class Callers(Protocol):
    def caller(self, access_key_id: str, session_token: str | None) -> Caller | None:
        """The identity an access key id (and session token) belongs to, None if nobody's."""
        ...


class MotoCallers:
    """The identities of moto's IAM and STS backends in this process: the accounts' users with their access
    keys, and the role sessions AssumeRole gave out, looked up as moto looks up the signer of a request
    to itself (moto/iam/access_control.py `create_access_key`)."""

    def __init__(self, account_id: str, partition: str) -> None:
        self.account_id = account_id
        self.partition = partition

    def caller(self, access_key_id: str, session_token: str | None) -> Caller | None:
        from moto.iam.access_control import CreateAccessKeyFailure, create_access_key

        headers = {"X-Amz-Security-Token": session_token} if session_token else {}
        try:
            key = create_access_key(self.account_id, self.partition, access_key_id, headers)
        except CreateAccessKeyFailure:
            return None
        credentials = key.create_credentials()
        return Caller(
            arn=key.arn,
            account_id=self.account_id,
            access_key_id=credentials.access_key,
            secret_access_key=credentials.secret_key,
            session_token=credentials.token,
            policies=tuple(_document(p) for p in key.collect_policies()),
        )


def _document(policy: Any) -> str:
    """A policy moto collected as its JSON document: inline role policies are strings, inline user and
    group policies dicts, managed policies objects with versions (as moto's own IAMPolicy reads them)."""
    if isinstance(policy, str):
        return policy
    if isinstance(policy, dict):
        return str(policy["policy_document"])
    default = next(version for version in policy.versions if version.is_default)
    return str(default.document)


@dataclass(frozen=True)
class SignedRequest:
    method: str
    # As the client addressed it: http://127.0.0.1:<port>/<stage>/<path>?<query>.
    url: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes


def _parameters(header: str) -> dict[str, str]:
    algorithm, _, rest = header.partition(" ")
    if algorithm != ALGORITHM:
        # API Gateway reads any other scheme (a "Bearer" token, say) as a malformed SigV4 header.
        raise incomplete_signature(
            f"'{rest or algorithm}' not a valid key=value pair (missing equal-sign) in Authorization header: "
            f"'{header}'."
        )
    found: dict[str, str] = {}
    for element in (e.strip() for e in rest.split(",")):
        match = _PAIR.match(element)
        if match is None:
            raise incomplete_signature(
                f"'{element}' not a valid key=value pair (missing equal-sign) in Authorization header: "
                f"'{header}'."
            )
        found[match[1]] = match[2]
    missing = [name for name in _PARAMETERS if not found.get(name)]
    if missing:
        raise incomplete_signature(
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
        )
    return found


def _check_signed_at(request: SignedRequest, now: datetime) -> None:
    stamp = request.headers.get("x-amz-date")
    if not stamp:
        raise incomplete_signature(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    try:
        signed = datetime.strptime(stamp, AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise signature_mismatch() from None
    if signed < now - MAX_SKEW:
        earliest = (now - MAX_SKEW).strftime(AMZ_DATE)
        raise signature_expired(
            f"Signature expired: {stamp} is now earlier than {earliest} ({now:{AMZ_DATE}} - 5 min.)"
        )
    if signed > now + MAX_SKEW:
        latest = (now + MAX_SKEW).strftime(AMZ_DATE)
        raise signature_expired(
            f"Signature not yet current: {stamp} is still later than {latest} ({now:{AMZ_DATE}} + 5 min.)"
        )


def expected_signature(request: SignedRequest, caller: Caller, *, region: str, signed_headers: str) -> str:
    """The signature of `request` as its caller's secret key signs it, by botocore's SigV4 signer."""
    names = set(signed_headers.split(";"))
    aws_request = AWSRequest(
        method=request.method,
        url=request.url,
        data=request.body,
        headers={name: value for name, value in request.headers.items() if name in names},
    )
    aws_request.context["timestamp"] = request.headers["x-amz-date"]
    signer = SigV4Auth(
        Credentials(caller.access_key_id, caller.secret_access_key, caller.session_token), SERVICE, region
    )
    canonical = signer.canonical_request(aws_request)
    return str(signer.signature(signer.string_to_sign(aws_request, canonical), aws_request))


def authenticate(request: SignedRequest, callers: Callers, *, region: str, now: datetime) -> Caller:
    """The caller who signed `request`, or API Gateway's refusal."""
    header = request.headers.get("authorization")
    if not header:
        raise missing_authentication_token()
    parameters = _parameters(header)
    _check_signed_at(request, now)
    access_key_id = parameters["Credential"].split("/")[0]
    caller = callers.caller(access_key_id, request.headers.get("x-amz-security-token"))
    if caller is None:
        raise invalid_security_token()
    expected = expected_signature(request, caller, region=region, signed_headers=parameters["SignedHeaders"])
    if expected != parameters["Signature"]:
        raise signature_mismatch()
    return caller


def authorize(caller: Caller, method_arn: str) -> None:
    """execute-api:Invoke on the method's ARN by the caller's identity policies, or AccessDenied."""
    statements = [s for document in caller.policies for s in Policy.parse(document).statements]
    applicable = [s for s in statements if s.applies_to(INVOKE, method_arn, {})]
    if any(s.effect == "Deny" for s in applicable):
        raise access_denied(caller.arn, method_arn, explicit=True)
    if not any(s.effect == "Allow" for s in applicable):
        raise access_denied(caller.arn, method_arn, explicit=False)
