"""moto's server on 127.0.0.1, serving the AWS APIs it emulates, with IAM access control switched on.

moto checks every request against the caller's identity policies once its `INITIAL_NO_AUTH_ACTION_COUNT`
is used up (moto docs, "IAM-like Access Control"). The server starts open, so the deployer can create
its own user and the stack; `enforce_iam` then closes it: from there on every request must be signed
with credentials moto issued (the deployer's access key, or a role's session from `AssumeRole`) and is
allowed only what that identity's policies allow.

What moto 5.2.5 judges (moto/core/authorization.py, moto/iam/access_control.py): the action for every
service; the resource only for S3 (bucket and key ARNs) — other services are judged with resource `*`;
bucket policies for S3; not KMS key policies, queue policies or topic policies; and no request context,
so a statement with a Condition never matches (see `moto_judgeable`).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

ACCOUNT_ID = "123456789012"  # moto's default account; the program's mocks use the same one
DEPLOYER = "rehearsal-deployer"
ADMINISTRATOR = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def environment(self) -> dict[str, str]:
        """As the Lambda runtime hands a function its role's session."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


class MotoServer:
    def __init__(self, region: str) -> None:
        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""
        self.deployer: Credentials | None = None

    def start(self) -> MotoServer:
        # AWS managed policies exist in every account; moto loads them only when asked (moto/settings.py).
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        # The server's request log is werkzeug's: one line per AWS call, noise beside the rehearsal's own.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        # moto's backends live in the process, not the server: a server started after another in the same
        # process would see its resources. Each rehearsal starts from an empty account.
        self._post("/moto-api/reset", b"")
        iam = self.client("iam", Credentials("bootstrap", "bootstrap"))
        iam.create_user(UserName=DEPLOYER)
        iam.put_user_policy(
            UserName=DEPLOYER, PolicyName="administrator", PolicyDocument=json.dumps(ADMINISTRATOR)
        )
        key = iam.create_access_key(UserName=DEPLOYER)["AccessKey"]
        self.deployer = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        return self

    def stop(self) -> None:
        # moto keeps the setting process-wide: leave the next in-process user of moto an open moto.
        self._set_no_auth_action_count(b"inf")
        self._server.stop()

    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        who = credentials or self.deployer
        assert who is not None, "start the server first"
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=who.access_key_id,
            aws_secret_access_key=who.secret_access_key,
            aws_session_token=who.session_token,
        )

    def assume_role(self, role_arn: str, session_name: str) -> Credentials:
        """A role's session, as the service that runs as the role (Lambda, SageMaker) gets it.

        Taken before `enforce_iam`: moto 5.2.5 cannot evaluate a service principal in a trust policy
        (iam/access_control.py `_check_principal` fails on `{"Service": ...}`), and only the service, never
        the deployer, may assume these roles in AWS."""
        sts = self.client("sts")
        session = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64])["Credentials"]
        return Credentials(session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])

    def enforce_iam(self) -> None:
        """From now on every request needs moto-issued credentials and is judged by their policies."""
        self._set_no_auth_action_count(b"0")

    def _set_no_auth_action_count(self, count: bytes) -> None:
        self._post("/moto-api/reset-auth", count)

    def _post(self, path: str, data: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - the local moto server
            f"{self.url}{path}",
            data=data,
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the local moto server
            answer.read()


# The services whose requests moto judges on the resource they name (the responses classes that define
# `_determine_resource`, and S3's own check); every other service it judges on resource "*".
RESOURCE_JUDGED = frozenset({"s3", "sqs", "iam", "sts"})
# IAM has no actions for SQS's batch calls: a batch is allowed by the single call's permission (SQS
# developer guide, "Amazon SQS API permissions: Actions and resource reference"); moto judges it by the
# batch call's own name.
BATCH_ACTIONS = {
    "sqs:SendMessage": "sqs:SendMessageBatch",
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
}


def moto_judgeable(document: str) -> str:
    """A policy as moto can judge it, never narrower than the program's, so a denial in the rehearsal is
    a permission the program really lacks:

    - moto evaluates statements without a request context, so a Condition never holds there
      (moto/iam/access_control.py `_check_conditions`): conditional Allows become unconditional and
      conditional Denies are dropped;
    - for services other than `RESOURCE_JUDGED`, moto matches the statement's Resource against "*"
      (moto/core/responses.py `call_action`), which an ARN never matches: their actions get Resource "*";
    - an SQS call's permission also names its batch call, which moto judges by that name;
    - a one-element Resource list becomes its element, the same grant in IAM, because moto compares it as
      a string where it checks that a log bucket admits S3's logging service (moto/s3/models.py
      `_log_permissions_enabled_policy`).

    The conditions and resources themselves are proven by the policy and IAM-exactness tests."""
    policy = json.loads(document)
    statements: list[dict[str, Any]] = []
    for statement in policy.get("Statement", []):
        if "Condition" in statement:
            if statement["Effect"] == "Deny":
                continue
            statement = {k: v for k, v in statement.items() if k != "Condition"}
        statements.extend(_by_judged_resource(statement))
    return json.dumps({**policy, "Statement": statements})


def _by_judged_resource(statement: dict[str, Any]) -> list[dict[str, Any]]:
    actions = statement.get("Action")
    if actions is None or "Resource" not in statement:
        return [statement]
    actions = [actions] if isinstance(actions, str) else list(actions)
    actions += [BATCH_ACTIONS[a] for a in actions if a in BATCH_ACTIONS and BATCH_ACTIONS[a] not in actions]
    judged = [a for a in actions if a.split(":", 1)[0] in RESOURCE_JUDGED]
    unjudged = [a for a in actions if a not in judged]
    resource = statement["Resource"]
    if isinstance(resource, list) and len(resource) == 1:
        resource = resource[0]
    split = []
    if judged:
        split.append({**statement, "Action": judged, "Resource": resource})
    if unjudged:
        split.append({**statement, "Action": unjudged, "Resource": "*"})
    return split
