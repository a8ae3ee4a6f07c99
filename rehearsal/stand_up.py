"""Create what the program declares in the emulators, generically by resource type.

The input is the program's own resource graph (`tools.mockrun.run_program`), in registration order, which
is an order where every resource comes after those its inputs name. Each type has one handler that makes
the API calls `pulumi up` would make through the provider; the few values AWS chooses (a KMS key id, a
queue URL, a subscription ARN) differ from the mocks' guesses, so each handler reports the pairs it
learns and later inputs are translated before use. Resources that moto does not serve (Lambda, API
Gateway) are handed on to the rehearsal's own services with translated inputs; a type with no handler
stops the rehearsal, naming it, so the program cannot grow a resource the rehearsal silently ignores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rehearsal.moto_server import MotoServer, moto_judgeable
from tools.mockrun import Resource, StackRun

# Served by the rehearsal itself (Lambda service, event sources, REST API), not by moto.
LAMBDA_TYPES = frozenset(
    {
        "aws:lambda/function:Function",
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
        "aws:lambda/permission:Permission",
        "aws:lambda/invocation:Invocation",
    }
)
API_PREFIX = "aws:apigateway/"
# Declared by the program, with nothing to emulate: why, per type.
NOT_EMULATED = {
    # The region's CloudWatch role for API Gateway logging: an account setting, no API behaviour.
    "aws:apigateway/account:Account": "account-level logging role of API Gateway",
}


class UnsupportedResource(Exception):
    """The program declares a resource type the rehearsal cannot stand up."""


@dataclass
class Translation:
    """Mock values (ARNs, ids, URLs the mocks guessed) -> the values the emulators gave."""

    pairs: dict[str, str] = field(default_factory=dict)

    def learn(self, mock: str, real: str) -> None:
        if mock and mock != real:
            self.pairs[mock] = real

    def apply(self, value: Any) -> Any:
        if isinstance(value, str):
            # Longest first, so a URL is replaced whole before an id inside it.
            for mock in sorted(self.pairs, key=len, reverse=True):
                if mock in value:
                    value = value.replace(mock, self.pairs[mock])
            return value
        if isinstance(value, list):
            return [self.apply(v) for v in value]
        if isinstance(value, dict):
            return {k: self.apply(v) for k, v in value.items()}
        return value


@dataclass
class StoodUp:
    """What the emulators hold now, and the resources the rehearsal's own services take over."""

    translation: Translation
    emulated: list[Resource]
    lambda_resources: list[Resource]
    api_resources: list[Resource]
    skipped: dict[str, str]

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.lambda_resources + self.api_resources + self.emulated if r.type == type_]


def _secret(value: Any) -> Any:
    """A secret input as the mocks record it ({<signature>: ..., "value": ...}), unwrapped."""
    if isinstance(value, dict) and "value" in value and len(value) == 2:
        return value["value"]
    return value


Handler = Callable[[MotoServer, Resource, Translation], None]


def _kms_key(aws: MotoServer, r: Resource, t: Translation) -> None:
    key = aws.client("kms").create_key(Description=r.inputs.get("description", ""))["KeyMetadata"]
    if r.inputs.get("enableKeyRotation"):
        aws.client("kms").enable_key_rotation(KeyId=key["KeyId"])
    t.learn(r.id, key["KeyId"])


def _kms_key_policy(aws: MotoServer, r: Resource, t: Translation) -> None:
    aws.client("kms").put_key_policy(KeyId=r.inputs["keyId"], PolicyName="default", Policy=r.inputs["policy"])


def _kms_alias(aws: MotoServer, r: Resource, t: Translation) -> None:
    aws.client("kms").create_alias(AliasName=r.id, TargetKeyId=r.inputs["targetKeyId"])


def _bucket(aws: MotoServer, r: Resource, t: Translation) -> None:
    # us-east-1 is the one region that takes no location constraint (S3 API reference, CreateBucket).
    location = (
        {} if aws.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": aws.region}}
    )
    aws.client("s3").create_bucket(Bucket=r.id, **location)


def _bucket_versioning(aws: MotoServer, r: Resource, t: Translation) -> None:
    status = r.inputs["versioningConfiguration"]["status"]
    aws.client("s3").put_bucket_versioning(
        Bucket=r.inputs["bucket"], VersioningConfiguration={"Status": status}
    )


def _bucket_encryption(aws: MotoServer, r: Resource, t: Translation) -> None:
    rules = []
    for rule in r.inputs["rules"]:
        default = rule["applyServerSideEncryptionByDefault"]
        by_default = {"SSEAlgorithm": default["sseAlgorithm"]}
        if default.get("kmsMasterKeyId"):
            by_default["KMSMasterKeyID"] = default["kmsMasterKeyId"]
        rules.append(
            {
                "ApplyServerSideEncryptionByDefault": by_default,
                "BucketKeyEnabled": bool(rule.get("bucketKeyEnabled")),
            }
        )
    aws.client("s3").put_bucket_encryption(
        Bucket=r.inputs["bucket"], ServerSideEncryptionConfiguration={"Rules": rules}
    )


def _public_access_block(aws: MotoServer, r: Resource, t: Translation) -> None:
    names = {
        "blockPublicAcls": "BlockPublicAcls",
        "ignorePublicAcls": "IgnorePublicAcls",
        "blockPublicPolicy": "BlockPublicPolicy",
        "restrictPublicBuckets": "RestrictPublicBuckets",
    }
    aws.client("s3").put_public_access_block(
        Bucket=r.inputs["bucket"],
        PublicAccessBlockConfiguration={api: bool(r.inputs.get(ours)) for ours, api in names.items()},
    )


def _ownership_controls(aws: MotoServer, r: Resource, t: Translation) -> None:
    ownership = r.inputs["rule"]["objectOwnership"]
    aws.client("s3").put_bucket_ownership_controls(
        Bucket=r.inputs["bucket"], OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]}
    )


def _bucket_policy(aws: MotoServer, r: Resource, t: Translation) -> None:
    aws.client("s3").put_bucket_policy(Bucket=r.inputs["bucket"], Policy=moto_judgeable(r.inputs["policy"]))


def _lifecycle(aws: MotoServer, r: Resource, t: Translation) -> None:
    rules = []
    for rule in r.inputs["rules"]:
        api: dict[str, Any] = {
            "ID": rule["id"],
            "Status": rule["status"],
            "Filter": {"Prefix": rule["filter"]["prefix"]},
        }
        if "expiration" in rule:
            api["Expiration"] = {"Days": rule["expiration"]["days"]}
        if "noncurrentVersionExpiration" in rule:
            api["NoncurrentVersionExpiration"] = {
                "NoncurrentDays": rule["noncurrentVersionExpiration"]["noncurrentDays"]
            }
        if "abortIncompleteMultipartUpload" in rule:
            api["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"]
            }
        rules.append(api)
    aws.client("s3").put_bucket_lifecycle_configuration(
        Bucket=r.inputs["bucket"], LifecycleConfiguration={"Rules": rules}
    )


def _bucket_logging(aws: MotoServer, r: Resource, t: Translation) -> None:
    aws.client("s3").put_bucket_logging(
        Bucket=r.inputs["bucket"],
        BucketLoggingStatus={
            "LoggingEnabled": {
                "TargetBucket": r.inputs["targetBucket"],
                "TargetPrefix": r.inputs["targetPrefix"],
            }
        },
    )


def _bucket_notification(aws: MotoServer, r: Resource, t: Translation) -> None:
    def rules(config: Mapping[str, Any]) -> dict[str, Any]:
        filters = [
            {"Name": name, "Value": config[key]}
            for name, key in (("prefix", "filterPrefix"), ("suffix", "filterSuffix"))
            if config.get(key)
        ]
        return {"Filter": {"Key": {"FilterRules": filters}}} if filters else {}

    topics = [
        {"TopicArn": c["topicArn"], "Events": c["events"], **rules(c)} for c in r.inputs.get("topics", [])
    ]
    queues = [
        {"QueueArn": c["queueArn"], "Events": c["events"], **rules(c)} for c in r.inputs.get("queues", [])
    ]
    if r.inputs.get("lambdaFunctions"):
        raise UnsupportedResource("bucket notifications to Lambda functions are not rehearsed")
    aws.client("s3").put_bucket_notification_configuration(
        Bucket=r.inputs["bucket"],
        NotificationConfiguration={"TopicConfigurations": topics, "QueueConfigurations": queues},
    )


def _topic(aws: MotoServer, r: Resource, t: Translation) -> None:
    attributes = {"KmsMasterKeyId": r.inputs["kmsMasterKeyId"]} if r.inputs.get("kmsMasterKeyId") else {}
    arn = aws.client("sns").create_topic(Name=r.outputs["name"], Attributes=attributes)["TopicArn"]
    t.learn(r.id, arn)


def _topic_policy(aws: MotoServer, r: Resource, t: Translation) -> None:
    aws.client("sns").set_topic_attributes(
        TopicArn=r.inputs["arn"], AttributeName="Policy", AttributeValue=r.inputs["policy"]
    )


def _subscription(aws: MotoServer, r: Resource, t: Translation) -> None:
    attributes = {"RawMessageDelivery": "true" if r.inputs.get("rawMessageDelivery") else "false"}
    if r.inputs.get("redrivePolicy"):
        attributes["RedrivePolicy"] = r.inputs["redrivePolicy"]
    if r.inputs.get("filterPolicy"):
        attributes["FilterPolicy"] = r.inputs["filterPolicy"]
    arn = aws.client("sns").subscribe(
        TopicArn=r.inputs["topic"],
        Protocol=r.inputs["protocol"],
        Endpoint=r.inputs["endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    t.learn(r.id, arn)


QUEUE_ATTRIBUTES = {
    "visibilityTimeoutSeconds": "VisibilityTimeout",
    "messageRetentionSeconds": "MessageRetentionPeriod",
    "kmsMasterKeyId": "KmsMasterKeyId",
    "kmsDataKeyReusePeriodSeconds": "KmsDataKeyReusePeriodSeconds",
    "redrivePolicy": "RedrivePolicy",
    "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "delaySeconds": "DelaySeconds",
    "maxMessageSize": "MaximumMessageSize",
    "sqsManagedSseEnabled": "SqsManagedSseEnabled",
}


def _queue(aws: MotoServer, r: Resource, t: Translation) -> None:
    attributes = {
        api: str(r.inputs[ours]).lower() if isinstance(r.inputs[ours], bool) else str(r.inputs[ours])
        for ours, api in QUEUE_ATTRIBUTES.items()
        if r.inputs.get(ours) not in (None, "")
    }
    unknown = set(r.inputs) - set(QUEUE_ATTRIBUTES) - {"name", "namePrefix", "tags"}
    if unknown:
        raise UnsupportedResource(f"queue {r.name}: attributes {sorted(unknown)} are not rehearsed")
    url = aws.client("sqs").create_queue(QueueName=r.outputs["name"], Attributes=attributes)["QueueUrl"]
    t.learn(r.id, url)


def _queue_policy(aws: MotoServer, r: Resource, t: Translation) -> None:
    aws.client("sqs").set_queue_attributes(
        QueueUrl=r.inputs["queueUrl"], Attributes={"Policy": r.inputs["policy"]}
    )


def _redrive_allow(aws: MotoServer, r: Resource, t: Translation) -> None:
    aws.client("sqs").set_queue_attributes(
        QueueUrl=r.inputs["queueUrl"], Attributes={"RedriveAllowPolicy": r.inputs["redriveAllowPolicy"]}
    )


def _parameter(aws: MotoServer, r: Resource, t: Translation) -> None:
    aws.client("ssm").put_parameter(
        Name=r.inputs["name"],
        Type=r.inputs["type"],
        Value=_secret(r.inputs["value"]),
        Description=r.inputs.get("description", ""),
    )


def _role(aws: MotoServer, r: Resource, t: Translation) -> None:
    aws.client("iam").create_role(
        RoleName=r.id,
        AssumeRolePolicyDocument=r.inputs["assumeRolePolicy"],
        Description=r.inputs.get("description", ""),
    )


def _role_policy(aws: MotoServer, r: Resource, t: Translation) -> None:
    aws.client("iam").put_role_policy(
        RoleName=r.inputs["role"], PolicyName=r.id, PolicyDocument=moto_judgeable(r.inputs["policy"])
    )


def _managed_policy(aws: MotoServer, r: Resource, t: Translation) -> None:
    # Judged by the rehearsal's own services (the local API's IAM authorization), which read the document
    # as the program wrote it; moto stores it, and attaches it to whom it is given.
    created = aws.client("iam").create_policy(
        PolicyName=r.id, PolicyDocument=r.inputs["policy"], Description=r.inputs.get("description", "")
    )
    t.learn(r.outputs["arn"], created["Policy"]["Arn"])


def _user_pool(aws: MotoServer, r: Resource, t: Translation) -> None:
    inputs = r.inputs
    password = inputs.get("passwordPolicy") or {}
    recovery = (inputs.get("accountRecoverySetting") or {}).get("recoveryMechanisms") or []
    created = aws.client("cognito-idp").create_user_pool(
        PoolName=r.id,
        Policies={
            "PasswordPolicy": {
                api: password[ours]
                for ours, api in (
                    ("minimumLength", "MinimumLength"),
                    ("requireLowercase", "RequireLowercase"),
                    ("requireUppercase", "RequireUppercase"),
                    ("requireNumbers", "RequireNumbers"),
                    ("requireSymbols", "RequireSymbols"),
                )
                if ours in password
            }
        },
        AdminCreateUserConfig={
            "AllowAdminCreateUserOnly": bool(
                (inputs.get("adminCreateUserConfig") or {}).get("allowAdminCreateUserOnly")
            )
        },
        AccountRecoverySetting={
            "RecoveryMechanisms": [{"Name": m["name"], "Priority": m["priority"]} for m in recovery]
        },
        DeletionProtection=inputs.get("deletionProtection", "INACTIVE"),
    )["UserPool"]
    t.learn(r.id, created["Id"])
    t.learn(r.outputs["arn"], created["Arn"])


def _user_pool_client(aws: MotoServer, r: Resource, t: Translation) -> None:
    inputs = r.inputs
    units = inputs.get("tokenValidityUnits") or {}
    created = aws.client("cognito-idp").create_user_pool_client(
        UserPoolId=inputs["userPoolId"],
        ClientName=r.id,
        GenerateSecret=bool(inputs.get("generateSecret")),
        ExplicitAuthFlows=inputs.get("explicitAuthFlows") or [],
        IdTokenValidity=inputs["idTokenValidity"],
        AccessTokenValidity=inputs["accessTokenValidity"],
        TokenValidityUnits={
            "IdToken": units["idToken"],
            "AccessToken": units["accessToken"],
            "RefreshToken": units["refreshToken"],
        },
        EnableTokenRevocation=bool(inputs.get("enableTokenRevocation")),
        PreventUserExistenceErrors=inputs.get("preventUserExistenceErrors", "LEGACY"),
    )["UserPoolClient"]
    t.learn(r.id, created["ClientId"])


def _role_policy_attachment(aws: MotoServer, r: Resource, t: Translation) -> None:
    aws.client("iam").attach_role_policy(RoleName=r.inputs["role"], PolicyArn=r.inputs["policyArn"])


def _log_group(aws: MotoServer, r: Resource, t: Translation) -> None:
    logs = aws.client("logs")
    options = {"kmsKeyId": r.inputs["kmsKeyId"]} if r.inputs.get("kmsKeyId") else {}
    logs.create_log_group(logGroupName=r.id, **options)
    if r.inputs.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=r.id, retentionInDays=r.inputs["retentionInDays"])


ALARM_PARAMETERS = {
    "alarmDescription": "AlarmDescription",
    "comparisonOperator": "ComparisonOperator",
    "evaluationPeriods": "EvaluationPeriods",
    "datapointsToAlarm": "DatapointsToAlarm",
    "metricName": "MetricName",
    "namespace": "Namespace",
    "period": "Period",
    "statistic": "Statistic",
    "threshold": "Threshold",
    "treatMissingData": "TreatMissingData",
    "alarmActions": "AlarmActions",
    "okActions": "OKActions",
    "insufficientDataActions": "InsufficientDataActions",
    "actionsEnabled": "ActionsEnabled",
}


def _alarm(aws: MotoServer, r: Resource, t: Translation) -> None:
    unknown = set(r.inputs) - set(ALARM_PARAMETERS) - {"name", "dimensions", "tags"}
    if unknown:
        raise UnsupportedResource(f"alarm {r.name}: inputs {sorted(unknown)} are not rehearsed")
    request = {api: r.inputs[ours] for ours, api in ALARM_PARAMETERS.items() if ours in r.inputs}
    request["Dimensions"] = [{"Name": k, "Value": v} for k, v in (r.inputs.get("dimensions") or {}).items()]
    aws.client("cloudwatch").put_metric_alarm(AlarmName=r.inputs.get("name") or r.id, **request)


def _event_rule(aws: MotoServer, r: Resource, t: Translation) -> None:
    aws.client("events").put_rule(
        Name=r.id,
        EventPattern=r.inputs["eventPattern"],
        Description=r.inputs.get("description", ""),
        State=r.inputs.get("state", "ENABLED"),
    )


def _event_target(aws: MotoServer, r: Resource, t: Translation) -> None:
    target: dict[str, Any] = {"Id": r.inputs.get("targetId") or r.name, "Arn": r.inputs["arn"]}
    if r.inputs.get("retryPolicy"):
        policy = r.inputs["retryPolicy"]
        target["RetryPolicy"] = {
            "MaximumRetryAttempts": policy["maximumRetryAttempts"],
            "MaximumEventAgeInSeconds": policy["maximumEventAgeInSeconds"],
        }
    if r.inputs.get("deadLetterConfig"):
        target["DeadLetterConfig"] = {"Arn": r.inputs["deadLetterConfig"]["arn"]}
    aws.client("events").put_targets(Rule=r.inputs["rule"], Targets=[target])


def _dashboard(aws: MotoServer, r: Resource, t: Translation) -> None:
    # moto checks only that the body is JSON and keeps it as given; tests/infra/test_dashboard.py checks
    # its widgets.
    aws.client("cloudwatch").put_dashboard(
        DashboardName=r.inputs["dashboardName"], DashboardBody=r.inputs["dashboardBody"]
    )


HANDLERS: dict[str, Handler] = {
    "aws:kms/key:Key": _kms_key,
    "aws:kms/keyPolicy:KeyPolicy": _kms_key_policy,
    "aws:kms/alias:Alias": _kms_alias,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketVersioning:BucketVersioning": _bucket_versioning,
    (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ): _bucket_encryption,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _public_access_block,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _ownership_controls,
    "aws:s3/bucketPolicy:BucketPolicy": _bucket_policy,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _lifecycle,
    "aws:s3/bucketLogging:BucketLogging": _bucket_logging,
    "aws:s3/bucketNotification:BucketNotification": _bucket_notification,
    "aws:sns/topic:Topic": _topic,
    "aws:sns/topicPolicy:TopicPolicy": _topic_policy,
    "aws:sns/topicSubscription:TopicSubscription": _subscription,
    "aws:sqs/queue:Queue": _queue,
    "aws:sqs/queuePolicy:QueuePolicy": _queue_policy,
    "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy": _redrive_allow,
    "aws:ssm/parameter:Parameter": _parameter,
    "aws:iam/role:Role": _role,
    "aws:iam/rolePolicy:RolePolicy": _role_policy,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": _role_policy_attachment,
    "aws:iam/policy:Policy": _managed_policy,
    "aws:cognito/userPool:UserPool": _user_pool,
    "aws:cognito/userPoolClient:UserPoolClient": _user_pool_client,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _alarm,
    "aws:cloudwatch/dashboard:Dashboard": _dashboard,
    "aws:cloudwatch/eventRule:EventRule": _event_rule,
    "aws:cloudwatch/eventTarget:EventTarget": _event_target,
}


def stand_up(run: StackRun, aws: MotoServer) -> StoodUp:
    """Create `run`'s resources in moto, in the program's order; hand back the rest, translated."""
    translation = Translation()
    emulated: list[Resource] = []
    lambda_resources: list[Resource] = []
    api_resources: list[Resource] = []
    skipped: dict[str, str] = {}
    unsupported = sorted(
        {
            r.type
            for r in run.resources
            if r.custom
            and not r.type.startswith("pulumi:providers:")
            and r.type not in HANDLERS
            and r.type not in LAMBDA_TYPES
            and r.type not in NOT_EMULATED
            and not r.type.startswith(API_PREFIX)
        }
    )
    if unsupported:
        raise UnsupportedResource(f"the rehearsal cannot stand up {', '.join(unsupported)}")
    for resource in run.resources:
        if not resource.custom or resource.type.startswith("pulumi:providers:"):
            continue
        local = replace(
            resource,
            inputs=translation.apply(resource.inputs),
            outputs=translation.apply(resource.outputs),
        )
        if resource.type in NOT_EMULATED:
            skipped[resource.name] = NOT_EMULATED[resource.type]
        elif resource.type in LAMBDA_TYPES:
            lambda_resources.append(local)
        elif resource.type.startswith(API_PREFIX):
            api_resources.append(local)
        else:
            HANDLERS[resource.type](aws, local, translation)
            emulated.append(local)
    # Inputs handed on were translated as they came; values learnt later apply to them too.
    return StoodUp(
        translation=translation,
        emulated=emulated,
        lambda_resources=[replace(r, inputs=translation.apply(r.inputs)) for r in lambda_resources],
        api_resources=[replace(r, inputs=translation.apply(r.inputs)) for r in api_resources],
        skipped=skipped,
    )


def policy_documents(stood_up: StoodUp) -> dict[str, list[str]]:
    """Each role's name -> its inline policy documents as the program wrote them (conditions kept)."""
    documents: dict[str, list[str]] = {}
    for policy in stood_up.of_type("aws:iam/rolePolicy:RolePolicy"):
        documents.setdefault(policy.inputs["role"], []).append(policy.inputs["policy"])
    return documents
