"""The prediction API of every stack: keys and validation on each method, proxying to the predict function
only from this API, a deployment that follows the definition, logs, throttling, the function's role,
and the OpenAPI document that cannot drift from the request model."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from components import prediction_api
from settings import API_AUTHORIZATIONS, PROJECT, InvalidStackConfig, load_settings
from tests.support.policies import statements
from tests.support.stacks import STACKS, config_for, synth
from tools.mockrun import MOCK_ACCOUNT_ID, PROJECT_DIR, Resource, StackRun, run_program
from tools.openapi import OPENAPI_PATH, openapi_document, render_document

METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"
PERMISSION = "aws:lambda/permission:Permission"
ROUTES = {("POST", "predict"), ("GET", "health")}
REQUEST_SCHEMA = PROJECT_DIR / "functions" / "predict" / "request_schema.json"


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    return synth(request.param)


# Every stack file with each authorization: what must hold whichever one a stack picks.
AUTHORIZED_RUNS = [(stack, authorization) for stack in STACKS for authorization in API_AUTHORIZATIONS]


@pytest.fixture(params=AUTHORIZED_RUNS, ids=[f"{s}-{a}" for s, a in AUTHORIZED_RUNS])
def authorized_run(request: pytest.FixtureRequest) -> StackRun:
    stack, authorization = request.param
    return synth(stack, apiAuthorization=authorization)


@pytest.fixture(params=STACKS)
def cognito_run(request: pytest.FixtureRequest) -> StackRun:
    return synth(request.param, apiAuthorization="cognito")


def rest_api(run: StackRun) -> Resource:
    return run.named("predict-api")


def execution_arn(run: StackRun) -> str:
    return str(rest_api(run).outputs["executionArn"])


def function(run: StackRun) -> Resource:
    return run.named("predict-function")


def route_of(run: StackRun, method: Resource) -> tuple[str, str]:
    """(HTTP method, path) of a method resource."""
    (resource,) = [
        r for r in run.of_type("aws:apigateway/resource:Resource") if r.id == method.inputs["resourceId"]
    ]
    return method.inputs["httpMethod"], resource.inputs["pathPart"]


def methods(run: StackRun) -> dict[tuple[str, str], dict[str, Any]]:
    return {route_of(run, m): m.inputs for m in run.of_type(METHOD)}


def deployment_trigger(run: StackRun) -> str:
    return str(run.named("predict-deployment").inputs["triggers"]["redeployment"])


# ------------------------------------------------------------------------------------------ methods


def test_api_has_exactly_post_predict_and_get_health_on_a_regional_endpoint(run: StackRun) -> None:
    assert set(methods(run)) == ROUTES
    assert rest_api(run).inputs["endpointConfiguration"]["types"] == "REGIONAL"
    assert rest_api(run).inputs["apiKeySource"] == "HEADER"
    for resource in run.of_type("aws:apigateway/resource:Resource"):
        assert resource.inputs["parentId"] == rest_api(run).outputs["rootResourceId"]


def test_every_method_requires_an_api_key(authorized_run: StackRun) -> None:
    run = authorized_run
    for route, method in methods(run).items():
        assert method["apiKeyRequired"] is True, route
        assert method["restApi"] == rest_api(run).id


# ----------------------------------------------------------------------------------------- authorization


def test_new_stacks_and_prod_require_iam_signatures_not_only_the_api_key() -> None:
    # No stack file names the key but prod's: a new stack gets the default, which must not be "key only".
    tags = json.dumps({"tags": {"project": PROJECT, "stack": "new"}})
    new = {"aws:region": "eu-west-1", "aws:defaultTags": tags}
    assert load_settings(new, stack="new").api.authorization == "iam"
    assert synth("prod").config["serverless-ml-pipeline:apiAuthorization"] == "iam"
    for stack in STACKS:
        assert {m["authorization"] for m in methods(synth(stack)).values()} == {"AWS_IAM"}


def test_iam_authorization_signs_every_method_and_makes_no_user_pool(run: StackRun) -> None:
    for route, method in methods(run).items():
        assert method["authorization"] == "AWS_IAM", route
        assert "authorizerId" not in method, route
    assert not run.of_type("aws:apigateway/authorizer:Authorizer")
    assert not run.of_type("aws:cognito/userPool:UserPool")


def test_invoke_policy_allows_exactly_invoke_on_each_method_of_the_stage(run: StackRun) -> None:
    (policy,) = run.of_type("aws:iam/policy:Policy")
    assert statements(json.loads(policy.inputs["policy"])) == [
        {
            "Sid": "InvokePredictionApi",
            "Effect": "Allow",
            "Action": ["execute-api:Invoke"],
            "Resource": [
                f"{execution_arn(run)}/v1/POST/predict",
                f"{execution_arn(run)}/v1/GET/health",
            ],
        }
    ]
    assert run.outputs["api_invoke_policy_arn"] == policy.outputs["arn"]
    assert run.outputs["api_authorization"] == "iam"


def test_cognito_authorization_checks_every_method_against_the_stacks_user_pool(
    cognito_run: StackRun,
) -> None:
    run = cognito_run
    # No IAM grant to hand out when nobody signs.
    assert not run.of_type("aws:iam/policy:Policy")
    assert "api_invoke_policy_arn" not in run.outputs
    (authorizer,) = run.of_type("aws:apigateway/authorizer:Authorizer")
    (pool,) = run.of_type("aws:cognito/userPool:UserPool")
    (client,) = run.of_type("aws:cognito/userPoolClient:UserPoolClient")
    assert authorizer.inputs["type"] == "COGNITO_USER_POOLS"
    assert authorizer.inputs["providerArns"] == [pool.outputs["arn"]]
    assert authorizer.inputs["identitySource"] == "method.request.header.Authorization"
    assert authorizer.inputs["restApi"] == rest_api(run).id
    for route, method in methods(run).items():
        assert method["authorization"] == "COGNITO_USER_POOLS", route
        assert method["authorizerId"] == authorizer.id, route
    assert client.inputs["userPoolId"] == pool.id
    assert run.outputs["user_pool_id"] == pool.id
    assert run.outputs["user_pool_client_id"] == client.id
    assert run.outputs["api_authorization"] == "cognito"


def test_cognito_pool_admits_only_users_the_administrators_create(cognito_run: StackRun) -> None:
    run = cognito_run
    (pool,) = run.of_type("aws:cognito/userPool:UserPool")
    (client,) = run.of_type("aws:cognito/userPoolClient:UserPoolClient")
    assert pool.inputs["adminCreateUserConfig"] == {"allowAdminCreateUserOnly": True}
    assert pool.inputs["passwordPolicy"]["minimumLength"] >= 12
    assert client.inputs["generateSecret"] is False
    assert client.inputs["preventUserExistenceErrors"] == "ENABLED"
    assert client.inputs["enableTokenRevocation"] is True
    validity = (client.inputs["idTokenValidity"], client.inputs["tokenValidityUnits"]["idToken"])
    assert validity == (60, "minutes")


def test_the_user_pool_is_protected_where_the_stack_protects_its_data(cognito_run: StackRun) -> None:
    (pool,) = cognito_run.of_type("aws:cognito/userPool:UserPool")
    protect = load_settings(cognito_run.config, stack=cognito_run.stack).data.protect
    assert protect == (cognito_run.stack == "prod")
    assert (pool.protect, pool.retain_on_delete) == (protect, protect)
    assert pool.inputs["deletionProtection"] == ("ACTIVE" if protect else "INACTIVE")


def test_authorizer_change_redeploys_the_api() -> None:
    iam, cognito = synth("dev"), synth("dev", apiAuthorization="cognito")
    assert deployment_trigger(iam) != deployment_trigger(cognito)
    deployment = cognito.named("predict-deployment")
    (authorizer,) = cognito.of_type("aws:apigateway/authorizer:Authorizer")
    assert authorizer.urn in deployment.dependencies


# ---------------------------------------------------------------------------------------------- WAF

WEB_ACL = "aws:wafv2/webAcl:WebAcl"
ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"


def test_no_web_acl_unless_a_rate_limit_is_set(run: StackRun) -> None:
    assert not run.of_type(WEB_ACL) and not run.of_type(ASSOCIATION)


@pytest.mark.parametrize("stack", STACKS)
def test_a_rate_limit_blocks_each_client_ip_past_it_on_the_stage(stack: str) -> None:
    run = synth(stack, apiWafRateLimit="100", apiWafWindowSeconds="60")
    (acl,) = run.of_type(WEB_ACL)
    (association,) = run.of_type(ASSOCIATION)
    assert acl.inputs["scope"] == "REGIONAL"
    assert acl.inputs["defaultAction"] == {"allow": {}}
    (rule,) = acl.inputs["rules"]
    assert rule["action"] == {"block": {}}
    assert rule["statement"] == {
        "rateBasedStatement": {"limit": 100, "aggregateKeyType": "IP", "evaluationWindowSec": 60}
    }
    assert rule["visibilityConfig"]["cloudwatchMetricsEnabled"] is True
    assert association.inputs["webAclArn"] == acl.outputs["arn"]
    assert association.inputs["resourceArn"] == run.named("predict-stage").outputs["arn"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("apiWafRateLimit", "9"), ("apiWafRateLimit", "2000000001"), ("apiWafWindowSeconds", "30")],
)
def test_a_rate_limit_or_window_waf_refuses_is_refused(key: str, value: str) -> None:
    with pytest.raises(InvalidStackConfig, match=f"{key} = '{value}'"):
        load_settings({"aws:region": "eu-west-1", f"{PROJECT}:{key}": value}, stack="x")


def test_unknown_authorization_is_refused_before_any_resource() -> None:
    with pytest.raises(InvalidStackConfig, match="apiAuthorization = 'none'"):
        load_settings({"aws:region": "eu-west-1", f"{PROJECT}:apiAuthorization": "none"}, stack="x")


def test_predict_bodies_are_validated_against_the_request_model(run: StackRun) -> None:
    post = methods(run)[("POST", "predict")]
    validator = run.named("predict-validator")
    model = run.named("predict-request-model")
    assert post["requestValidatorId"] == validator.id
    assert validator.inputs["validateRequestBody"] is True
    # Any content type: a body sent as text/plain must not skip validation.
    assert post["requestModels"] == {"$default": model.outputs["name"]}
    assert model.inputs["contentType"] == "application/json"
    assert json.loads(model.inputs["schema"]) == json.loads(REQUEST_SCHEMA.read_text())
    # Nothing to validate on GET /health.
    assert "requestValidatorId" not in methods(run)[("GET", "health")]


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"records": [{"age": 41, "job": "admin.", "married": "yes", "balance": None}]}, True),
        ({"instances": [[41, "admin.", None, 1.5e3, "no"]]}, True),
        # A boolean has no CSV spelling the function could be sure of: refused at the gateway already.
        ({"records": [{"married": True}]}, False),
        ({"instances": [[False]]}, False),
        ({"records": [{}]}, True),  # the function names the missing features
        ({}, False),
        ({"records": []}, False),
        ({"instances": []}, False),
        ({"records": [{"a": 1}], "instances": [[1]]}, False),
        ({"records": [{"a": {"nested": 1}}]}, False),
        ({"records": [{"a": [1, 2]}]}, False),
        ({"instances": [[[1]]]}, False),
        ({"instances": [{"a": 1}]}, False),
        ({"records": [[1]]}, False),
        ({"records": [{"a": 1}], "extra": 1}, False),
        ([{"a": 1}], False),
    ],
)
def test_request_schema_takes_records_or_instances_of_scalar_values(body: Any, valid: bool) -> None:
    schema = json.loads(REQUEST_SCHEMA.read_text())
    # API Gateway models are JSON Schema draft 4.
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    jsonschema.Draft4Validator.check_schema(schema)
    assert jsonschema.Draft4Validator(schema).is_valid(body) is valid


# ----------------------------------------------------------------------------------------- integration


def test_each_method_is_proxied_to_the_predict_function(run: StackRun) -> None:
    integrations = run.of_type(INTEGRATION)
    assert len(integrations) == len(ROUTES)
    by_resource = {m.inputs["resourceId"]: m.inputs for m in run.of_type(METHOD)}
    settings = load_settings(run.config, stack=run.stack)
    for integration in integrations:
        inputs = integration.inputs
        assert (inputs["type"], inputs["integrationHttpMethod"]) == ("AWS_PROXY", "POST")
        assert inputs["uri"] == function(run).outputs["invokeArn"]
        assert inputs["httpMethod"] == by_resource[inputs["resourceId"]]["httpMethod"]
        # The function times out, and answers, before the gateway gives up on it.
        assert inputs["timeoutMilliseconds"] == 29_000
        assert settings.prediction.timeout_seconds * 1000 < inputs["timeoutMilliseconds"]


def test_only_this_api_may_invoke_the_function_and_only_on_its_methods(run: StackRun) -> None:
    name = function(run).outputs["name"]
    permissions = [p.inputs for p in run.of_type(PERMISSION) if p.inputs["function"] == name]
    assert {p["sourceArn"] for p in permissions} == {
        f"{execution_arn(run)}/*/POST/predict",
        f"{execution_arn(run)}/*/GET/health",
    }
    assert len(permissions) == 2
    assert execution_arn(run).startswith(f"arn:aws:execute-api:eu-west-1:{MOCK_ACCOUNT_ID}:")
    for permission in permissions:
        assert (permission["principal"], permission["action"]) == (
            "apigateway.amazonaws.com",
            "lambda:InvokeFunction",
        )


def test_gateway_errors_answer_json_with_message_and_request_id(run: StackRun) -> None:
    responses = {r.inputs["responseType"]: r.inputs for r in run.of_type("aws:apigateway/response:Response")}
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX"}
    for response in responses.values():
        assert response["restApiId"] == rest_api(run).id
        template = response["responseTemplates"]["application/json"]
        # Gateway response templates substitute variables only; messageString arrives quoted.
        assert "$util" not in template
        rendered = template.replace("$context.error.messageString", '"Invalid request body"').replace(
            "$context.requestId", "c0ffee-1"
        )
        assert json.loads(rendered) == {"message": "Invalid request body", "requestId": "c0ffee-1"}


# ------------------------------------------------------------------------------------------ deployment


def test_stage_v1_serves_the_deployment_of_this_api(run: StackRun) -> None:
    stage = run.named("predict-stage").inputs
    deployment = run.named("predict-deployment")
    assert stage["deployment"] == deployment.id
    assert stage["restApi"] == deployment.inputs["restApi"] == rest_api(run).id
    assert stage["stageName"] == "v1"


def test_deployment_is_made_after_every_method_integration_and_model(run: StackRun) -> None:
    dependencies = set(run.named("predict-deployment").dependencies)
    for type_ in (
        METHOD,
        INTEGRATION,
        "aws:apigateway/model:Model",
        "aws:apigateway/requestValidator:RequestValidator",
        "aws:apigateway/response:Response",
    ):
        for resource in run.of_type(type_):
            assert resource.urn in dependencies, resource.name


def test_deployment_is_replaced_new_first_when_its_triggers_change(run: StackRun) -> None:
    deployment = run.named("predict-deployment")
    assert deployment.replace_on_changes == ["triggers"]
    # Create-before-delete: the stage moves to the new deployment before the old one goes.
    assert deployment.delete_before_replace is False
    assert re.fullmatch(r"[0-9a-f]{64}", deployment_trigger(run))


def test_deployment_trigger_is_stable_for_an_unchanged_definition() -> None:
    # Otherwise every `pulumi up` would redeploy the API.
    assert deployment_trigger(run_program("dev", config_for("dev"))) == deployment_trigger(synth("dev"))


def test_deployment_trigger_changes_when_the_request_model_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    before = deployment_trigger(synth("dev"))
    schema = prediction_api.request_schema()
    schema["properties"]["records"]["maxItems"] = 10
    monkeypatch.setattr(prediction_api, "request_schema", lambda: schema)
    changed = run_program("dev", config_for("dev"))
    assert json.loads(changed.named("predict-request-model").inputs["schema"]) == schema
    assert deployment_trigger(changed) != before


def test_deployment_trigger_changes_when_a_method_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    before = deployment_trigger(synth("dev"))
    routes = (prediction_api.Route("predict", "POST", validated=False), prediction_api.ROUTES[1])
    monkeypatch.setattr(prediction_api, "ROUTES", routes)
    assert deployment_trigger(run_program("dev", config_for("dev"))) != before


def test_deployment_trigger_changes_when_the_integration_target_changes() -> None:
    # Another region: another function invoke ARN in the integrations.
    moved = synth("dev", **{"aws:region": "us-east-2"})
    assert moved.of_type(INTEGRATION)[0].inputs["uri"] != synth("dev").of_type(INTEGRATION)[0].inputs["uri"]
    assert deployment_trigger(moved) != deployment_trigger(synth("dev"))


# ------------------------------------------------------------------------------------- stage and logs


def test_access_logs_are_json_per_request_to_a_log_group_with_retention(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    access = run.named("predict-stage").inputs["accessLogSettings"]
    log_group = run.named("predict-access-logs")
    assert access["destinationArn"] == log_group.outputs["arn"]
    assert log_group.inputs["retentionInDays"] == settings.functions.log_retention_days
    fields = json.loads(access["format"])
    assert fields["requestId"] == "$context.requestId"
    for variable in (
        "$context.identity.sourceIp",
        "$context.identity.apiKeyId",
        "$context.httpMethod",
        "$context.resourcePath",
        "$context.status",
        "$context.responseLatency",
        "$context.integration.status",
        "$context.error.message",
    ):
        assert variable in fields.values(), variable


def test_execution_logs_go_to_a_log_group_with_retention_made_before_the_stage(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    log_group = run.named("predict-execution-logs")
    # The name API Gateway writes execution logs to; it would create it without retention.
    assert log_group.inputs["name"] == f"API-Gateway-Execution-Logs_{rest_api(run).id}/v1"
    assert log_group.inputs["retentionInDays"] == settings.functions.log_retention_days
    assert log_group.urn in run.named("predict-stage").dependencies


def test_tracing_is_on_in_prod_and_off_in_dev() -> None:
    assert synth("prod").named("predict-stage").inputs["xrayTracingEnabled"] is True
    assert synth("dev").named("predict-stage").inputs["xrayTracingEnabled"] is False
    assert synth("dev", apiTracing="true").named("predict-stage").inputs["xrayTracingEnabled"] is True


def test_method_settings_log_at_the_configured_level_without_bodies(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    method_settings = run.named("predict-method-settings").inputs
    assert method_settings["methodPath"] == "*/*"
    assert method_settings["stageName"] == run.named("predict-stage").outputs["stageName"]
    assert method_settings["settings"]["loggingLevel"] == settings.api.logging_level
    assert method_settings["settings"]["metricsEnabled"] is True
    assert method_settings["settings"]["dataTraceEnabled"] is False
    info = synth("dev", apiLoggingLevel="INFO").named("predict-method-settings").inputs
    assert info["settings"]["loggingLevel"] == "INFO"


# -------------------------------------------------------------------------------------- usage plan


def test_usage_plan_throttles_and_limits_the_key_per_day_from_config(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    plan = run.named("predict-usage-plan")
    assert plan.inputs["apiStages"] == [
        {"apiId": rest_api(run).id, "stage": run.named("predict-stage").outputs["stageName"]}
    ]
    assert plan.inputs["throttleSettings"] == {
        "rateLimit": settings.api.throttle_rate_per_second,
        "burstLimit": settings.api.throttle_burst,
    }
    assert plan.inputs["quotaSettings"] == {"limit": settings.api.quota_per_day, "period": "DAY"}
    binding = run.named("predict-usage-plan-key").inputs
    assert binding == {
        "keyId": run.named("predict-key").id,
        "keyType": "API_KEY",
        "usagePlanId": plan.id,
    }
    assert run.named("predict-key").inputs["enabled"] is True


def test_usage_plan_follows_config() -> None:
    plan = synth("dev", apiThrottleRatePerSecond="50", apiThrottleBurst="100", apiQuotaPerDay="123456").named(
        "predict-usage-plan"
    )
    assert plan.inputs["throttleSettings"] == {"rateLimit": 50, "burstLimit": 100}
    assert plan.inputs["quotaSettings"] == {"limit": 123456, "period": "DAY"}


# ---------------------------------------------------------------------------------------- function


def test_predict_role_allows_exactly_invoking_the_endpoint_and_reading_the_schema(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    bucket = run.named("ingest-data").outputs["arn"]
    endpoint = settings.endpoint_name.lower()
    policy = run.named("predict-role-policy").json_input("policy")
    assert statements(policy) == [
        {
            "Sid": "InvokeStackEndpoint",
            "Effect": "Allow",
            "Action": ["sagemaker:InvokeEndpoint"],
            "Resource": [f"arn:aws:sagemaker:eu-west-1:{MOCK_ACCOUNT_ID}:endpoint/{endpoint}"],
        },
        {
            "Sid": "ReadServingModelAndSchema",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"{bucket}/deployments/serving.json", f"{bucket}/processed/*/schema.json"],
        },
        {"Sid": "TellMissingKeys", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket]},
        {
            "Sid": "DecryptData",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": [run.named("ingest-key").outputs["arn"]],
        },
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{run.named('predict-logs').outputs['arn']}:*"],
        },
        *(
            [
                {
                    "Sid": "SendTraces",
                    "Effect": "Allow",
                    "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                    "Resource": ["*"],
                }
            ]
            if settings.functions.tracing
            else []
        ),
    ]
    (trust,) = statements(run.named("predict-role").json_input("assumeRolePolicy"))
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_function_runs_the_predict_package_with_the_stacks_limits(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    inputs = function(run).inputs
    assert inputs["handler"] == "predict.handler.lambda_handler"
    assert inputs["code"] == {"path": ".build/predict.zip"}
    assert (inputs["memorySize"], inputs["timeout"]) == (
        settings.prediction.memory_mb,
        settings.prediction.timeout_seconds,
    )
    assert inputs["loggingConfig"]["logGroup"] == run.named("predict-logs").outputs["name"]
    assert run.named("predict-logs").inputs["retentionInDays"] == settings.functions.log_retention_days
    assert inputs["environment"]["variables"] == {
        "DATA_BUCKET": run.named("ingest-data").outputs["bucket"],
        "ENDPOINT_NAME": settings.endpoint_name,
        "SERVING_RECORD_KEY": "deployments/serving.json",
        "MAX_RECORDS": str(settings.prediction.max_records),
        # SageMaker InvokeEndpoint's request limit: 4 MB serverless, 6 MB real-time.
        "MAX_PAYLOAD_BYTES": "4000000" if settings.endpoint.serverless else "6000000",
        "POWERTOOLS_METRICS_NAMESPACE": f"serverless-ml-pipeline/{run.stack}",
        "POWERTOOLS_SERVICE_NAME": "predict",
    }


def test_function_environment_is_what_the_predict_code_reads(run: StackRun) -> None:
    from predict.environment import load_environment

    loaded = load_environment(function(run).inputs["environment"]["variables"])
    assert loaded.endpoint_name == load_settings(run.config, stack=run.stack).endpoint_name


def test_dev_sends_at_most_4_mb_to_its_serverless_endpoint_and_prod_6_mb() -> None:
    def limit(stack: str) -> str:
        return str(function(synth(stack)).inputs["environment"]["variables"]["MAX_PAYLOAD_BYTES"])

    assert (limit("dev"), limit("prod")) == ("4000000", "6000000")


# ------------------------------------------------------------------------------------------ outputs


def test_stack_exports_the_url_the_secret_key_and_the_function(run: StackRun) -> None:
    api_key = run.outputs["api_key"]
    # A secret output travels wrapped (the Pulumi wire protocol's secret signature): never in plain text.
    assert isinstance(api_key, dict) and "4dabf18193072939515e22adb298388d" in api_key
    assert api_key == run.named("predict-key").outputs["value"]
    assert run.outputs["api_url"] == run.named("predict-stage").outputs["invokeUrl"]
    assert run.outputs["api_url"] == (f"https://{rest_api(run).id}.execute-api.eu-west-1.amazonaws.com/v1")
    assert run.outputs["predict_function"] == function(run).outputs["name"]


# ------------------------------------------------------------------------------- CloudWatch role


def test_created_cloudwatch_role_is_set_for_the_region_before_the_stage_logs(run: StackRun) -> None:
    account = run.one("aws:apigateway/account:Account")
    role = run.named("predict-cloudwatch-role")
    assert account.inputs["cloudwatchRoleArn"] == role.outputs["arn"]
    (trust,) = statements(role.json_input("assumeRolePolicy"))
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}
    attachment = run.named("predict-cloudwatch-role-logs").inputs
    assert attachment == {
        "role": role.outputs["name"],
        "policyArn": "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
    }
    assert run.named("predict-cloudwatch-role-logs").urn in account.dependencies
    for logging in ("predict-stage", "predict-method-settings"):
        assert account.urn in run.named(logging).dependencies, logging


def test_region_wide_logging_setting_and_its_role_outlive_the_stack(run: StackRun) -> None:
    # Other APIs of the account log through the same setting: destroy must not reset it or delete its role.
    for name in ("predict-account", "predict-cloudwatch-role", "predict-cloudwatch-role-logs"):
        assert run.named(name).retain_on_delete, name


def test_existing_cloudwatch_role_leaves_the_account_setting_alone() -> None:
    run = synth("dev", apiCloudWatchRole="existing")
    assert run.of_type("aws:apigateway/account:Account") == []
    assert not [r for r in run.resources if r.name.startswith("predict-cloudwatch-role")]
    # Logging is still configured; it goes through the role the account already has.
    assert run.named("predict-stage").inputs["accessLogSettings"]["destinationArn"]


def test_cloudwatch_role_partition_follows_the_region() -> None:
    run = synth("dev", **{"aws:region": "cn-north-1"})
    assert run.named("predict-cloudwatch-role-logs").inputs["policyArn"] == (
        "arn:aws-cn:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    )


# ------------------------------------------------------------------------------------------- OpenAPI


def test_shipped_openapi_document_is_the_generated_one() -> None:
    assert OPENAPI_PATH.read_text() == render_document(openapi_document()), "run python -m tools.openapi"


def test_openapi_request_body_is_the_schema_the_gateway_validates_with(run: StackRun) -> None:
    document = json.loads(OPENAPI_PATH.read_text())
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    model = json.loads(run.named("predict-request-model").inputs["schema"])
    assert body["$ref"].endswith("/" + run.named("predict-request-model").outputs["name"])
    # The same schema, less `$schema` (the dialect name OpenAPI 3.0 schema objects do not take).
    assert {**schema, "$schema": model["$schema"]} == model


def test_openapi_documents_every_route_with_the_api_key_and_either_authorization() -> None:
    document = json.loads(OPENAPI_PATH.read_text())
    assert document["openapi"] == "3.0.1"
    documented = {
        (method.upper(), path.lstrip("/")) for path, item in document["paths"].items() for method in item
    }
    assert documented == {(route.method, route.path) for route in prediction_api.ROUTES} == ROUTES
    schemes = document["components"]["securitySchemes"]
    assert schemes["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    # API Gateway's names of the two authorizations the program's methods may have.
    authtypes = {
        name: s.get("x-amazon-apigateway-authtype") for name, s in schemes.items() if name != "api_key"
    }
    assert authtypes == {"sigv4": "awsSigv4", "cognito": "cognito_user_pools"}
    for name in authtypes:
        assert (schemes[name]["in"], schemes[name]["name"]) == ("header", "Authorization")
    for item in document["paths"].values():
        for operation in item.values():
            # Never the key alone: each alternative is the key and one authorization.
            assert operation["security"] == [{"api_key": [], name: []} for name in authtypes]
    errors = document["paths"]["/predict"]["post"]["responses"]
    assert set(errors) == {"200", "400", "401", "403", "413", "429", "500", "502", "503", "504"}
    health = document["components"]["schemas"]["Health"]
    assert health["properties"]["model"]["nullable"] is True
