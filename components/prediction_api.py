"""The prediction API: an API Gateway REST API with IAM or Cognito authorization, API keys, a usage plan,
request validation and access logs, in front of the predict function that encodes records and asks the
stack's endpoint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.api_access import ApiAccess, ApiAccessArgs
from components.api_firewall import ApiFirewall, ApiFirewallArgs
from components.aws_context import AwsContext
from components.event_bus import StackKey
from components.packaging import FUNCTIONS_DIR
from components.policy_documents import assumed_by, render
from components.prediction_api_policies import (
    SERVING_RECORD_KEY,
    api_gateway_logging_policy_arn,
    predict_policy,
)
from components.python_function import PythonFunctionArgs, log_group, python_function
from settings import API_INTEGRATION_TIMEOUT_SECONDS, ApiSettings, FunctionRuntime, PredictionSettings

HANDLER = "predict.handler.lambda_handler"
STAGE = "v1"
# The JSON Schema (draft 4, the dialect API Gateway models take) of a prediction request: the gateway
# validates bodies against it, and tools/openapi.py publishes it.
REQUEST_SCHEMA_PATH = FUNCTIONS_DIR / "predict" / "request_schema.json"
REQUEST_MODEL = "PredictRequest"
JSON = "application/json"
# SageMaker InvokeEndpoint's request body limits (SageMaker developer guide, "Amazon SageMaker AI
# endpoints and quotas"): 4 MB for serverless endpoints, 6 MB for real-time ones.
SERVERLESS_PAYLOAD_BYTES = 4_000_000
REALTIME_PAYLOAD_BYTES = 6_000_000


@dataclass(frozen=True)
class Route:
    """A path of the API and its one method; `validated` checks the body against the request model."""

    path: str
    method: str
    validated: bool


ROUTES = (Route("predict", "POST", validated=True), Route("health", "GET", validated=False))

# One JSON object per request (API Gateway developer guide, "$context variables for access logging").
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "requestTime": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "apiKeyId": "$context.identity.apiKeyId",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "protocol": "$context.protocol",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationStatus": "$context.integration.status",
        "integrationLatency": "$context.integration.latency",
        "error": "$context.error.message",
        "xrayTraceId": "$context.xrayTraceId",
    },
    separators=(",", ":"),
)

# The gateway's own refusals (no or bad API key, throttled, invalid body, integration timeout) answer in
# the same shape as the function's: {"message", "requestId"} (docs/openapi.json). `messageString` is
# already a quoted JSON string.
ERROR_TEMPLATE = '{"message":$context.error.messageString,"requestId":"$context.requestId"}'
# Gateway response templates only substitute variables (no VTL functions), and the validator's own
# report is not JSON-escaped, so an invalid body answers with the plain message "Invalid request body".
GATEWAY_RESPONSES = {"DEFAULT_4XX": ERROR_TEMPLATE, "DEFAULT_5XX": ERROR_TEMPLATE}


def request_schema(path: Path = REQUEST_SCHEMA_PATH) -> dict[str, Any]:
    """The request model's JSON Schema."""
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def definition_digest(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()


@dataclass(frozen=True)
class PredictionApiArgs:
    aws: AwsContext
    runtime: FunctionRuntime
    prediction: PredictionSettings
    api: ApiSettings
    layer_arns: list[str]
    endpoint_name: str
    # The endpoint's mode sets the largest request the function may send it.
    endpoint_serverless: bool
    metrics_namespace: str
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    # The stack key: the role decrypts with it, the log groups are encrypted with it.
    key: StackKey
    # protectData: what holds data (the Cognito user pool) is protected and retained.
    protect_data: bool


class PredictionApi(pulumi.ComponentResource):
    """Creates:

    - the predict function (own role: invoke the stack's endpoint, read `deployments/serving.json` and
      the datasets' `schema.json`, decrypt with the stack key, write its own log group, which the stack
      key encrypts: the endpoint's error messages it logs can echo request data), memory, timeout
      and record limit from `predict*` config, the endpoint's request size limit in its environment;
    - a regional REST API with `POST /predict` and `GET /health`, each requiring the caller's
      authorization per `apiAuthorization` (IAM signatures or Cognito ID tokens, `ApiAccess`) and an API
      key, and proxied to the function; `POST /predict` bodies are validated against
      `functions/predict/request_schema.json` before the function runs; the gateway's own errors answer
      `{"message", "requestId"}`;
    - a deployment replaced (new one first) whenever the API's definition changes, and the stage `v1`:
      JSON access logs and execution logs (`apiLoggingLevel`, no request or response bodies) to log groups
      kept for `logRetentionDays` and encrypted with the stack key, metrics on, X-Ray per `apiTracing`
      or `tracing`;
    - an API key and a usage plan on the stage: `apiThrottleRatePerSecond`, `apiThrottleBurst`,
      `apiQuotaPerDay`;
    - invoke permissions limited to this API, per method and path;
    - with `apiWafRateLimit` above 0, a WAF web ACL on the stage blocking a client IP address past that
      many requests per `apiWafWindowSeconds` (`ApiFirewall`);
    - with `apiCloudWatchRole` = create, the region's API Gateway CloudWatch role setting, pointed at a
      role of this stack (the AWS-managed AmazonAPIGatewayPushToCloudWatchLogs policy).
    """

    def __init__(
        self, name: str, args: PredictionApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:PredictionApi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ctx, api_settings = args.aws, args.api

        made = python_function(
            name,
            PythonFunctionArgs(
                runtime=args.runtime,
                package="predict",
                handler=HANDLER,
                memory_mb=args.prediction.memory_mb,
                timeout_seconds=args.prediction.timeout_seconds,
                layer_arns=args.layer_arns,
                log_key=args.key,
                policy=lambda log_group_arn: render(
                    predict_policy,
                    partition=ctx.partition,
                    region=ctx.region,
                    account_id=ctx.account_id,
                    endpoint_name=args.endpoint_name,
                    bucket_arn=args.bucket_arn,
                    key_arn=args.key.arn,
                    log_group_arn=log_group_arn,
                ),
                environment={
                    "DATA_BUCKET": args.bucket_name,
                    "ENDPOINT_NAME": args.endpoint_name,
                    "SERVING_RECORD_KEY": SERVING_RECORD_KEY,
                    "MAX_RECORDS": str(args.prediction.max_records),
                    "MAX_PAYLOAD_BYTES": str(
                        SERVERLESS_PAYLOAD_BYTES if args.endpoint_serverless else REALTIME_PAYLOAD_BYTES
                    ),
                    "POWERTOOLS_METRICS_NAMESPACE": args.metrics_namespace,
                },
            ),
            parent=self,
        )
        self.function, self.log_group = made.function, made.log_group

        self.rest_api = aws.apigateway.RestApi(
            f"{name}-api",
            description="Predictions of the stack's deployed model",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            api_key_source="HEADER",
            opts=child,
        )
        api_id = self.rest_api.id
        self.access = ApiAccess(
            f"{name}-access",
            ApiAccessArgs(
                authorization=api_settings.authorization,
                rest_api=self.rest_api,
                stage=STAGE,
                methods=[(route.method, route.path) for route in ROUTES],
                protect_users=args.protect_data,
            ),
            opts=child,
        )

        # Everything a deployment snapshots, as given to the resources that define it: a change to any of
        # it must redeploy the API, or the stage keeps serving the old definition.
        definition: dict[str, Any] = {}
        defined: list[pulumi.CustomResource] = []

        def define(key: str, props: dict[str, Any]) -> dict[str, Any]:
            definition[key] = props
            return props

        schema = json.dumps(request_schema(), separators=(",", ":"))
        self.model = aws.apigateway.Model(
            f"{name}-request-model",
            rest_api=api_id,
            **define(
                "model",
                {
                    "name": REQUEST_MODEL,
                    "content_type": JSON,
                    "schema": schema,
                    "description": "A prediction request",
                },
            ),
            opts=child,
        )
        self.validator = aws.apigateway.RequestValidator(
            f"{name}-validator",
            rest_api=api_id,
            **define(
                "validator",
                {"name": "body", "validate_request_body": True, "validate_request_parameters": False},
            ),
            opts=child,
        )
        defined += [self.model, self.validator, *self.access.defined]

        self.methods: dict[str, aws.apigateway.Method] = {}
        self.integrations: dict[str, aws.apigateway.Integration] = {}
        self.permissions: dict[str, aws.lambda_.Permission] = {}
        for route in ROUTES:
            key = f"{route.method} /{route.path}"
            verb = route.method.lower()
            resource = aws.apigateway.Resource(
                f"{name}-{route.path}-path",
                rest_api=api_id,
                parent_id=self.rest_api.root_resource_id,
                **define(f"resource /{route.path}", {"path_part": route.path}),
                opts=child,
            )
            validation: dict[str, Any] = (
                # `$default`: bodies of any content type are validated; a model keyed by one type only would
                # let a body sent as text/plain through unchecked (developer guide, "Request validation").
                {"request_validator_id": self.validator.id, "request_models": {"$default": self.model.name}}
                if route.validated
                else {}
            )
            method = aws.apigateway.Method(
                f"{name}-{verb}-{route.path}",
                rest_api=api_id,
                resource_id=resource.id,
                **define(
                    f"method {key}",
                    {
                        "http_method": route.method,
                        # The caller's identity (IAM or Cognito, components/api_access.py) decides
                        # access; the API key meters it under the usage plan.
                        **self.access.method_authorization,
                        "api_key_required": True,
                        **validation,
                    },
                ),
                opts=child,
            )
            integration = aws.apigateway.Integration(
                f"{name}-{verb}-{route.path}-integration",
                rest_api=api_id,
                resource_id=resource.id,
                http_method=method.http_method,
                **define(
                    f"integration {key}",
                    {
                        # Lambda proxy: the function gets the whole request and sets the whole response.
                        "type": "AWS_PROXY",
                        "integration_http_method": "POST",
                        "uri": self.function.invoke_arn,
                        "timeout_milliseconds": API_INTEGRATION_TIMEOUT_SECONDS * 1000,
                    },
                ),
                opts=child,
            )
            self.permissions[key] = aws.lambda_.Permission(
                f"{name}-{verb}-{route.path}-invoke",
                action="lambda:InvokeFunction",
                function=self.function.name,
                principal="apigateway.amazonaws.com",
                # Any stage of this API, this method and path only.
                source_arn=pulumi.Output.concat(
                    self.rest_api.execution_arn, f"/*/{route.method}/{route.path}"
                ),
                opts=child,
            )
            self.methods[key], self.integrations[key] = method, integration
            defined += [resource, method, integration]

        for response_type, template in GATEWAY_RESPONSES.items():
            defined.append(
                aws.apigateway.Response(
                    f"{name}-{response_type.lower().replace('_', '-')}",
                    rest_api_id=api_id,
                    **define(
                        f"response {response_type}",
                        {"response_type": response_type, "response_templates": {JSON: template}},
                    ),
                    opts=child,
                )
            )

        # Replacing a resource (a new id) changes the deployment too, even when its properties did not.
        definition["ids"] = [resource.id for resource in defined]
        self.definition_hash = pulumi.Output.json_dumps(definition).apply(definition_digest)
        # triggers force a replacement; Pulumi's default replacement creates the new deployment before
        # deleting the old one, so the stage moves to the new deployment and is never left without one
        # (delete_before_replace would delete the deployment the stage still serves, which API Gateway
        # refuses). depends_on: a deployment of an API whose methods lack integrations fails.
        self.deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=api_id,
            description="The prediction API's definition",
            triggers={"redeployment": self.definition_hash},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=defined,
                replace_on_changes=["triggers"],
                delete_before_replace=False,
            ),
        )

        logging_ready: list[pulumi.Resource] = []
        if api_settings.creates_cloudwatch_role:
            logging_ready.append(self._cloudwatch_role(name, ctx))

        retention = args.runtime.log_retention_days
        self.access_log_group = log_group(
            f"{name}-access-logs", retention_days=retention, key=args.key, parent=self
        )
        # API Gateway writes execution logs to this fixed name, creating it without retention or key unless
        # it exists first.
        self.execution_log_group = log_group(
            f"{name}-execution-logs",
            retention_days=retention,
            key=args.key,
            parent=self,
            log_group_name=pulumi.Output.concat("API-Gateway-Execution-Logs_", api_id, f"/{STAGE}"),
        )
        self.stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=api_id,
            deployment=self.deployment.id,
            stage_name=STAGE,
            xray_tracing_enabled=api_settings.tracing,
            access_log_settings=aws.apigateway.StageAccessLogSettingsArgs(
                destination_arn=self.access_log_group.arn, format=ACCESS_LOG_FORMAT
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*logging_ready, self.execution_log_group]),
        )
        self.method_settings = aws.apigateway.MethodSettings(
            f"{name}-method-settings",
            rest_api=api_id,
            stage_name=self.stage.stage_name,
            method_path="*/*",
            settings=aws.apigateway.MethodSettingsSettingsArgs(
                logging_level=api_settings.logging_level,
                metrics_enabled=True,
                # Full requests and responses in the logs would copy the callers' data there.
                data_trace_enabled=False,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=logging_ready),
        )

        self.usage_plan = aws.apigateway.UsagePlan(
            f"{name}-usage-plan",
            description="Throttle and daily quota of the prediction API's key",
            api_stages=[aws.apigateway.UsagePlanApiStageArgs(api_id=api_id, stage=self.stage.stage_name)],
            throttle_settings=aws.apigateway.UsagePlanThrottleSettingsArgs(
                rate_limit=api_settings.throttle_rate_per_second, burst_limit=api_settings.throttle_burst
            ),
            quota_settings=aws.apigateway.UsagePlanQuotaSettingsArgs(
                limit=api_settings.quota_per_day, period="DAY"
            ),
            opts=child,
        )
        self.api_key_resource = aws.apigateway.ApiKey(
            f"{name}-key", description="Calls the prediction API", enabled=True, opts=child
        )
        aws.apigateway.UsagePlanKey(
            f"{name}-usage-plan-key",
            key_id=self.api_key_resource.id,
            key_type="API_KEY",
            usage_plan_id=self.usage_plan.id,
            opts=child,
        )

        self.firewall = (
            ApiFirewall(
                f"{name}-firewall",
                ApiFirewallArgs(
                    rate_limit=api_settings.waf_rate_limit,
                    window_seconds=api_settings.waf_window_seconds,
                    stage_arn=self.stage.arn,
                ),
                opts=child,
            )
            if api_settings.firewall
            else None
        )

        self.url: pulumi.Output[str] = self.stage.invoke_url
        self.api_key: pulumi.Output[str] = pulumi.Output.secret(self.api_key_resource.value)
        self.function_name: pulumi.Output[str] = self.function.name
        self.register_outputs({"url": self.url, "api_key": self.api_key, "function_name": self.function_name})

    def _cloudwatch_role(self, name: str, ctx: AwsContext) -> aws.apigateway.Account:
        """The region's API Gateway setting that names the role it writes CloudWatch logs with."""
        # The setting serves every API of the account in the region, so `pulumi destroy` leaves it, and the
        # role it names, in place (retain_on_delete): deleting them would stop the logs of APIs that are
        # not this stack's. An IAM role costs nothing.
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        role = aws.iam.Role(
            f"{name}-cloudwatch-role",
            assume_role_policy=json.dumps(assumed_by("apigateway.amazonaws.com")),
            description="API Gateway writes this region's API logs with it",
            opts=kept,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-cloudwatch-role-logs",
            role=role.name,
            policy_arn=api_gateway_logging_policy_arn(ctx.partition),
            opts=kept,
        )
        # API Gateway checks that it can use the role when it is set: only once the policy is attached.
        return aws.apigateway.Account(
            f"{name}-account",
            cloudwatch_role_arn=role.arn,
            opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=[attachment])),
        )
