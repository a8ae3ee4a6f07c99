"""The deployed system on this machine: the program's stack in the emulators, its functions running from
their packages, driven as AWS drives them.

One source of truth: the unchanged program runs under mocks for the stack (`tools.mockrun`), and every
service is stood up from the resources it registers: moto holds what moto emulates (`stand_up`), the
local SageMaker trains and hosts, the Lambda service runs each function from the zip `pulumi up` would
upload, as its own role, fed by the event source mapping's poller, EventBridge's rules and API Gateway.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rehearsal.api_client import ApiClient
from rehearsal.api_cognito_auth import MotoJsonWebKeys
from rehearsal.api_definition import USER_POOL_CLIENT, partition
from rehearsal.api_gateway import LambdaAnswer, LocalRestApi
from rehearsal.api_iam_auth import MotoCallers
from rehearsal.clock import TimeScale
from rehearsal.event_sources import EventRouter, QueuePoller
from rehearsal.lambda_service import AsyncConfig, FunctionSpec, LambdaService
from rehearsal.moto_server import ACCOUNT_ID, Credentials, MotoServer
from rehearsal.role_access import RoleAccess
from rehearsal.sagemaker.server import SageMakerServer
from rehearsal.sagemaker.service import LocalSageMaker
from rehearsal.stand_up import StoodUp, policy_documents, stand_up
from tools.mockrun import PROJECT_DIR, Resource, StackRun, run_program, stack_config

FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
ASYNC_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
PERMISSION = "aws:lambda/permission:Permission"
INVOCATION = "aws:lambda/invocation:Invocation"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# The team's code that calls the prediction API: an IAM user of its own (apiAuthorization iam), or a user
# of the stack's pool (cognito).
API_CLIENT_USER = "rehearsal-api-client"


@dataclass(frozen=True)
class Revocation:
    """An action taken out of one of the program's role policies before the stack stands up, as if the
    program had never granted it: the rehearsal then shows what the missing permission breaks."""

    policy: str  # the RolePolicy resource's logical name, e.g. "transform-role-policy"
    action: str

    def apply(self, resource: Resource) -> Resource:
        document = json.loads(resource.inputs["policy"])
        found = False
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if self.action in actions:
                found = True
                statement["Action"] = [a for a in actions if a != self.action]
        if not found:
            raise ValueError(f"{self.policy} grants no {self.action}")
        document["Statement"] = [s for s in document["Statement"] if s["Action"]]
        return replace(resource, inputs={**resource.inputs, "policy": json.dumps(document)})


@dataclass(frozen=True)
class StackOptions:
    stack: str = "dev"
    # Stack config overrides, as `pulumi config set` would make them.
    config: Mapping[str, str] = field(default_factory=dict)
    # AWS's waits pass this many times faster (visibility timeouts, retries, endpoint changes, bake time).
    time_scale: float = 600.0
    revocations: Sequence[Revocation] = ()
    work_dir: Path | None = None


def program_run(options: StackOptions) -> StackRun:
    """The program's resources for the stack, with the options' revocations applied."""
    config = {**stack_config(options.stack), **options.config}
    run = run_program(options.stack, config)
    by_policy = {r.policy: r for r in options.revocations}
    resources = []
    for resource in run.resources:
        if resource.type == ROLE_POLICY and resource.name in by_policy:
            resource = by_policy.pop(resource.name).apply(resource)
        resources.append(resource)
    if by_policy:
        raise ValueError(f"the program has no role policy named {', '.join(sorted(by_policy))}")
    return replace(run, resources=resources)


class LocalStack:
    """Start with `with LocalStack(options) as stack:`; every service stops on leaving the block."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.time_scale = TimeScale(options.time_scale)
        self._exit = ExitStack()
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self._exit.close()

    def _start(self) -> None:
        began = time.perf_counter()
        self.run = program_run(self.options)
        self.region = self.run.config.get("aws:region", "us-east-1")
        self.timings["program"] = time.perf_counter() - began

        work = self.options.work_dir or Path(tempfile.mkdtemp(prefix="rehearsal-"))
        work.mkdir(parents=True, exist_ok=True)
        self.work_dir = work
        if self.options.work_dir is None:
            self._exit.callback(shutil.rmtree, work, ignore_errors=True)

        self.aws = MotoServer(self.region).start()
        self._exit.callback(self.aws.stop)
        self.stood_up: StoodUp = stand_up(self.run, self.aws)
        assert self.aws.deployer is not None
        self.access = RoleAccess(
            policy_documents(self.stood_up), administrators={self.aws.deployer.access_key_id}
        )
        self.sessions = self._role_sessions()
        self.timings["stack"] = time.perf_counter() - began - self.timings["program"]

        functions = [
            FunctionSpec.from_resource(r, project_dir=PROJECT_DIR) for r in self.stood_up.of_type(FUNCTION)
        ]
        self.sagemaker = LocalSageMaker(
            region=self.region,
            account_id=ACCOUNT_ID,
            s3_for_role=lambda role_arn: self.aws.client("s3", self.sessions[role_arn]),
            publish=self._publish,
            alarm_state=self._alarm_state,
            time_scale=self.time_scale,
            authorize=self.access.authorize,
        )
        # Its tuning and event threads end with it (after the server, which stops first).
        self._exit.callback(self.sagemaker.close)
        self.sagemaker_server = SageMakerServer(self.sagemaker)
        self.sagemaker_server.start()
        self._exit.callback(self.sagemaker_server.stop)

        self.lambda_ = LambdaService(
            functions,
            environment=self.endpoints(),
            credentials=lambda spec: self.sessions[spec.role_arn].environment(),
            time_scale=self.time_scale,
            log_dir=work / "logs",
            destinations=self._deliver,
        )
        self._exit.callback(self.lambda_.close)
        for config in self.stood_up.of_type(ASYNC_CONFIG):
            self.lambda_.configure_async(config.inputs["functionName"], AsyncConfig.from_resource(config))
        for permission in self.stood_up.of_type(PERMISSION):
            self.lambda_.add_permission(
                permission.inputs["function"],
                permission.inputs["principal"],
                permission.inputs.get("sourceArn"),
            )
        self.router = EventRouter(
            events=self.aws.client("events"),
            lambda_=self.lambda_,
            sqs=self.aws.client("sqs"),
            time_scale=self.time_scale,
        )

        # Signing in to Cognito is not signed with AWS credentials: done while moto is still open.
        client_credentials, id_token = self._api_client_identity()
        # Everything below runs as AWS would run it: IAM judges every request from here on.
        self.aws.enforce_iam()
        self.pollers = [self._poller(mapping) for mapping in self.stood_up.of_type(MAPPING)]
        for poller in self.pollers:
            poller.start()
            self._exit.callback(poller.stop)
        # The pools' app clients, by the ids Cognito gave them: the audience of their ID tokens.
        clients = [
            replace(c, id=self.stood_up.translation.apply(c.id))
            for c in self.stood_up.of_type(USER_POOL_CLIENT)
        ]
        self.api = LocalRestApi(
            self.stood_up.api_resources + self.stood_up.of_type(PERMISSION) + clients,
            invoke=self._invoke_for_api,
            region=self.region,
            account_id=ACCOUNT_ID,
            # Clients call in real time: the usage plan's rate, burst and quota count real seconds, as
            # the functions' own timeouts do; only AWS's waits are compressed.
            time_scale=TimeScale(1.0),
            callers=MotoCallers(ACCOUNT_ID, partition(self.region)),
            json_web_keys=MotoJsonWebKeys(),
        )
        self.api.start()
        self._exit.callback(self.api.stop)
        self.api_client = ApiClient(
            self.api.url, self.api.api_key, self.region, credentials=client_credentials, id_token=id_token
        )
        self._exit.callback(self._lifecycle, "delete")
        self._lifecycle("create")
        self.timings["services"] = (
            time.perf_counter() - began - self.timings["program"] - self.timings["stack"]
        )

    def _api_client_identity(self) -> tuple[Credentials | None, str | None]:
        """Who calls the API, as a team sets it up (README, "Calling the API"): with iam, an IAM user given
        the stack's invoke policy (api_invoke_policy_arn) and nothing else; with cognito, a user an
        administrator creates in the stack's pool, signed in through its app client for an ID token."""
        if self.output("api_authorization") == "iam":
            iam = self.aws.client("iam")
            iam.create_user(UserName=API_CLIENT_USER)
            iam.attach_user_policy(UserName=API_CLIENT_USER, PolicyArn=self.output("api_invoke_policy_arn"))
            key = iam.create_access_key(UserName=API_CLIENT_USER)["AccessKey"]
            return Credentials(key["AccessKeyId"], key["SecretAccessKey"]), None
        cognito = self.aws.client("cognito-idp")
        pool, client = self.output("user_pool_id"), self.output("user_pool_client_id")
        # Letters of both cases, digits and a symbol, as the pool's password policy asks.
        password = f"Rh-{secrets.token_urlsafe(16)}-9a"
        cognito.admin_create_user(UserPoolId=pool, Username=API_CLIENT_USER, MessageAction="SUPPRESS")
        cognito.admin_set_user_password(
            UserPoolId=pool, Username=API_CLIENT_USER, Password=password, Permanent=True
        )
        signed_in = cognito.initiate_auth(
            ClientId=client,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": API_CLIENT_USER, "PASSWORD": password},
        )
        return None, str(signed_in["AuthenticationResult"]["IdToken"])

    def _role_sessions(self) -> dict[str, Credentials]:
        """A session for every role of the program, as the service it trusts would take it."""
        sessions = {}
        for role in self.stood_up.of_type("aws:iam/role:Role"):
            credentials = self.aws.assume_role(role.outputs["arn"], f"rehearsal-{role.name}")
            sessions[role.outputs["arn"]] = credentials
            self.access.add_session(credentials.access_key_id, role.id)
        return sessions

    def _poller(self, mapping: Resource) -> QueuePoller:
        function = self.lambda_.spec(mapping.inputs["functionName"])
        queue_arn = mapping.inputs["eventSourceArn"]
        # Lambda polls the queue with the function's own execution role (Lambda developer guide, "Using
        # Lambda with Amazon SQS": the role needs sqs:ReceiveMessage, DeleteMessage, GetQueueAttributes).
        sqs = self.aws.client("sqs", self.sessions[function.role_arn])
        return QueuePoller(
            mapping.inputs,
            sqs=sqs,
            queue_url=self.queue_url(queue_arn),
            lambda_=self.lambda_,
            time_scale=self.time_scale,
            region=self.region,
            # What the rehearsal does beyond Lambda (compressing the visibility timeout) is its own
            # doing, not the function role's.
            housekeeping=self.aws.client("sqs"),
        )

    def _lifecycle(self, action: str) -> None:
        """`aws.lambda_.Invocation` resources with lifecycle scope CRUD: invoked at create and at delete
        with their input and the provider's `tf` block (pulumi-aws lambda Invocation docs)."""
        for invocation in self.stood_up.of_type(INVOCATION):
            payload = {**json.loads(invocation.inputs["input"])}
            payload[invocation.inputs.get("terraformKey", "tf")] = {"action": action, "prev_input": None}
            result = self.lambda_.invoke(invocation.inputs["functionName"], payload)
            if not result.ok:
                raise RuntimeError(f"{invocation.name} ({action}) failed: {result.error}")

    # ---------------------------------------------------------------------------------- wiring

    def endpoints(self) -> dict[str, str]:
        """Where the functions' SDK finds each service (boto3's standard endpoint variables)."""
        return {
            "AWS_ENDPOINT_URL": self.aws.url,
            "AWS_ENDPOINT_URL_SAGEMAKER": self.sagemaker_server.url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.sagemaker_server.url,
            "AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING": self.sagemaker_server.url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def _publish(self, event: dict[str, Any]) -> None:
        self.router.publish(event)

    def _alarm_state(self, alarm: str) -> str:
        alarms = self.aws.client("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
        return str(alarms[0]["StateValue"]) if alarms else "INSUFFICIENT_DATA"

    def _deliver(self, destination: str, record: dict[str, Any]) -> None:
        if ":sqs:" not in destination:
            raise ValueError(f"on-failure destination {destination} is not a queue")
        self.aws.client("sqs").send_message(
            QueueUrl=self.queue_url(destination), MessageBody=json.dumps(record)
        )

    def _invoke_for_api(self, function: str, event: dict[str, Any]) -> LambdaAnswer:
        result = self.lambda_.invoke(function, event)
        timed_out = bool(result.error and "Task timed out" in str(result.error.get("errorMessage", "")))
        return LambdaAnswer(result.payload, result.error, timed_out, result.duration_ms)

    def queue_url(self, queue_arn: str) -> str:
        name = queue_arn.rsplit(":", 1)[-1]
        return f"{self.aws.url}/{ACCOUNT_ID}/{name}"

    # ---------------------------------------------------------------------------------- what users do

    def output(self, name: str) -> str:
        """A stack output as the emulators know it (a queue URL of moto's, not the mocks' guess)."""
        return str(self.stood_up.translation.apply(self.run.outputs[name]))

    @property
    def bucket(self) -> str:
        return self.output("bucket")

    @property
    def raw_prefix(self) -> str:
        return self.output("upload_prefix")

    def upload(self, key: str, body: bytes) -> None:
        """A team member uploads under raw/ (as the deployer: the bucket encrypts with its default key)."""
        self.aws.client("s3").put_object(Bucket=self.bucket, Key=f"{self.raw_prefix}{key}", Body=body)

    def read_json(self, key: str) -> Any | None:
        s3 = self.aws.client("s3")
        try:
            return json.loads(s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    def keys(self, prefix: str) -> list[str]:
        pages = (
            self.aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def queue_depth(self, output: str) -> int:
        """Messages visible and in flight in the queue a stack output names (queue_url, dead_letter_...)."""
        url = self.output(output)
        attributes = self.aws.client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        """Poll `check` until it returns something truthy; on timeout, say what did not happen."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{what} did not happen within {timeout:.0f} s (logs: {self.work_dir / 'logs'})"
                )
            time.sleep(0.1)
