"""Who may call the prediction API: the authorization every method requires besides its API key.

API keys identify callers for usage plans; AWS documents them as no means of authorization ("Don't use
API keys for authentication or authorization to control access to your APIs", API Gateway developer
guide, "Usage plans and API keys for REST APIs"). So every method also requires one of (`apiAuthorization`):

- `iam`: method authorization AWS_IAM. A caller signs each request with SigV4 (service `execute-api`), and
  API Gateway judges `execute-api:Invoke` on the method's ARN with the caller's IAM policies. The stack
  makes a managed policy that grants exactly that on exactly its methods (`invoke_policy`), for the
  users and roles that are to call the API.
- `cognito`: method authorization COGNITO_USER_POOLS with an authorizer of a user pool the stack makes,
  and one app client of it. A caller sends an ID token of that pool in the `Authorization` header; API
  Gateway checks its signature, issuer, audience (the client) and expiry ("Integrate a REST API with an
  Amazon Cognito user pool").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.policy_documents import render
from components.prediction_api_policies import invoke_policy

IAM, COGNITO = "iam", "cognito"
# Method authorization types (API Gateway API reference, Method.authorizationType).
METHOD_AUTHORIZATION = {IAM: "AWS_IAM", COGNITO: "COGNITO_USER_POOLS"}
# The request header a Cognito authorizer reads the token from.
TOKEN_SOURCE = "method.request.header.Authorization"  # noqa: S105 - a header name
# A leaked ID token is good for this long; 60 minutes is Cognito's default and its range is 5 minutes to
# 1 day (Cognito API reference, UserPoolClientType.IdTokenValidity).
ID_TOKEN_MINUTES = 60
# The pool's users sign in with a password: longer than Cognito's default minimum of 8 (Cognito developer
# guide, "Adding user pool password requirements").
MIN_PASSWORD_LENGTH = 12


@dataclass(frozen=True)
class ApiAccessArgs:
    authorization: str
    rest_api: aws.apigateway.RestApi
    stage: str
    # The (HTTP method, path) pairs of the API, e.g. ("POST", "predict").
    methods: Sequence[tuple[str, str]]
    # protectData: the pool's users are data too.
    protect_users: bool


class ApiAccess(pulumi.ComponentResource):
    """Creates, for `iam`, the managed policy `invoke_policy` (execute-api:Invoke on each method of the
    stage, nothing else); for `cognito`, a user pool (protected with `protectData`; administrators create
    its users: no self sign-up;
    passwords of 12 characters or more with all four character classes; recovery by verified e-mail), an
    app client without secret (password and refresh-token sign-in, ID tokens valid 60 minutes, token
    revocation, no answer that tells whether a user exists) and the API's COGNITO_USER_POOLS authorizer.
    `method_authorization` is what each method takes."""

    def __init__(self, name: str, args: ApiAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:ApiAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.authorization = args.authorization
        self.invoke_policy: aws.iam.Policy | None = None
        self.user_pool: aws.cognito.UserPool | None = None
        self.user_pool_client: aws.cognito.UserPoolClient | None = None
        self.authorizer: aws.apigateway.Authorizer | None = None
        self.method_authorization: dict[str, Any] = {
            "authorization": METHOD_AUTHORIZATION[args.authorization]
        }
        # Stack output name -> what a client needs to authenticate.
        self.client_outputs: dict[str, pulumi.Output[str]] = {}

        if args.authorization == IAM:
            self.invoke_policy = aws.iam.Policy(
                f"{name}-invoke-policy",
                description="Call the prediction API's methods (IAM authorization)",
                policy=render(
                    invoke_policy,
                    execution_arn=args.rest_api.execution_arn,
                    stage=args.stage,
                    methods=list(args.methods),
                ),
                opts=child,
            )
            self.client_outputs["api_invoke_policy_arn"] = self.invoke_policy.arn
        else:
            # With protectData, destroy refuses and removal retains the pool, and Cognito refuses to
            # delete it (DeletionProtection): losing it would lose every user.
            users_kept = pulumi.ResourceOptions(
                parent=self, protect=args.protect_users, retain_on_delete=args.protect_users
            )
            self.user_pool = aws.cognito.UserPool(
                f"{name}-users",
                deletion_protection="ACTIVE" if args.protect_users else "INACTIVE",
                admin_create_user_config=aws.cognito.UserPoolAdminCreateUserConfigArgs(
                    allow_admin_create_user_only=True
                ),
                password_policy=aws.cognito.UserPoolPasswordPolicyArgs(
                    minimum_length=MIN_PASSWORD_LENGTH,
                    require_lowercase=True,
                    require_uppercase=True,
                    require_numbers=True,
                    require_symbols=True,
                ),
                account_recovery_setting=aws.cognito.UserPoolAccountRecoverySettingArgs(
                    recovery_mechanisms=[
                        aws.cognito.UserPoolAccountRecoverySettingRecoveryMechanismArgs(
                            name="verified_email", priority=1
                        )
                    ]
                ),
                opts=users_kept,
            )
            self.user_pool_client = aws.cognito.UserPoolClient(
                f"{name}-client",
                user_pool_id=self.user_pool.id,
                # A client that runs code (a service, a notebook) holds no secret worth the name; the
                # authorizer checks the token's audience against this client's id instead.
                generate_secret=False,
                # InitiateAuth with USER_PASSWORD_AUTH sends the password to Cognito over TLS, which
                # boto3 can do without an SRP library; refresh tokens renew the ID token.
                explicit_auth_flows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
                id_token_validity=ID_TOKEN_MINUTES,
                access_token_validity=ID_TOKEN_MINUTES,
                token_validity_units=aws.cognito.UserPoolClientTokenValidityUnitsArgs(
                    id_token="minutes",  # noqa: S106 - units, not secrets
                    access_token="minutes",  # noqa: S106
                    refresh_token="days",  # noqa: S106
                ),
                enable_token_revocation=True,
                prevent_user_existence_errors="ENABLED",
                opts=child,
            )
            self.authorizer = aws.apigateway.Authorizer(
                f"{name}-authorizer",
                rest_api=args.rest_api.id,
                type="COGNITO_USER_POOLS",
                provider_arns=[self.user_pool.arn],
                identity_source=TOKEN_SOURCE,
                opts=child,
            )
            self.method_authorization["authorizer_id"] = self.authorizer.id
            self.client_outputs["user_pool_id"] = self.user_pool.id
            self.client_outputs["user_pool_client_id"] = self.user_pool_client.id
        self.register_outputs(dict(self.client_outputs))

    @property
    def defined(self) -> list[pulumi.CustomResource]:
        """The resources of the API's definition (a change to them must redeploy the API)."""
        return [self.authorizer] if self.authorizer is not None else []
