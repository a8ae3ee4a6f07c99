"""Cognito user pool authorization of a method (COGNITO_USER_POOLS), as API Gateway applies it.

The authorizer reads the token from its identity source (the `Authorization` header) and lets the request
through only with an ID token of one of its user pools ("Integrate a REST API with an Amazon Cognito user
pool"; with no OAuth scopes on the method, an ID token: "Control access to REST APIs using Amazon Cognito
user pools as an authorizer"), which holds when:

- it is a JWT signed RS256 by a key of the pool's JSON Web Key Set (the one moto publishes at
  `/<pool id>/.well-known/jwks.json` and signs its tokens with);
- its `iss` is `https://cognito-idp.<region>.amazonaws.com/<pool id>` of an authorizer's pool;
- its `token_use` is `id` and its `aud` an app client of that pool;
- its `exp` has not passed.

Anything else is 401 Unauthorized; an expired token is 401 "The incoming token has expired" (the answer
clients of such APIs report, e.g. aws-amplify/amplify-js#6060). The token's claims reach the function in
`requestContext.authorizer.claims`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rehearsal.api_responses import token_expired, unauthorized

ALGORITHM = "RS256"
ID_TOKEN = "id"  # noqa: S105 - the token_use of an ID token


class JsonWebKeys(Protocol):
    def keys(self, pool_id: str) -> list[dict[str, Any]]:
        """The pool's public keys (JWKS `keys`)."""
        ...


class MotoJsonWebKeys:
    """The JSON Web Key Set moto's Cognito publishes for every pool (the public half of the key it signs
    every token with, moto/cognitoidp/resources/jwks-public.json), read in this process."""

    def keys(self, pool_id: str) -> list[dict[str, Any]]:
        from moto.cognitoidp.responses import CognitoIdpJsonWebKeyResponse

        keys: list[dict[str, Any]] = json.loads(CognitoIdpJsonWebKeyResponse.json_web_key)["keys"]
        return keys


@dataclass(frozen=True)
class UserPools:
    """An authorizer's pools: issuer URL -> (pool id, its app client ids)."""

    by_issuer: Mapping[str, tuple[str, frozenset[str]]]

    @classmethod
    def of(cls, region: str, clients_by_pool: Mapping[str, frozenset[str]]) -> UserPools:
        return cls(
            {
                f"https://cognito-idp.{region}.amazonaws.com/{pool}": (pool, clients)
                for pool, clients in clients_by_pool.items()
            }
        )


def _decoded(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise unauthorized() from None


def _signed_by(key: Mapping[str, Any], signed: bytes, signature: bytes) -> bool:
    numbers = rsa.RSAPublicNumbers(
        int.from_bytes(_decoded(str(key["e"])), "big"), int.from_bytes(_decoded(str(key["n"])), "big")
    )
    try:
        numbers.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def verify_id_token(
    token: str | None, pools: UserPools, keys: JsonWebKeys, *, now: datetime
) -> dict[str, Any]:
    """The claims of a valid ID token of one of `pools`, or API Gateway's 401."""
    if not token:
        raise unauthorized()
    parts = token.split(".")
    if len(parts) != 3:
        raise unauthorized()
    try:
        header, claims = json.loads(_decoded(parts[0])), json.loads(_decoded(parts[1]))
    except ValueError:
        raise unauthorized() from None
    if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != ALGORITHM:
        raise unauthorized()
    pool = pools.by_issuer.get(str(claims.get("iss")))
    if pool is None:
        raise unauthorized()
    pool_id, clients = pool
    key = next((k for k in keys.keys(pool_id) if k.get("kid") == header.get("kid")), None)
    if key is None or not _signed_by(key, f"{parts[0]}.{parts[1]}".encode(), _decoded(parts[2])):
        raise unauthorized()
    if claims.get("token_use") != ID_TOKEN or claims.get("aud") not in clients:
        raise unauthorized()
    expires = claims.get("exp")
    if not isinstance(expires, int | float):
        raise unauthorized()
    if now.timestamp() >= expires:
        raise token_expired()
    return claims
