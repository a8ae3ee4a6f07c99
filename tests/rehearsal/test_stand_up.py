"""The stack stood up in moto from the program's own resources, and moto's IAM judging each role."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from botocore.exceptions import ClientError

from rehearsal.moto_server import MotoServer, moto_judgeable
from rehearsal.stand_up import StoodUp, UnsupportedResource, stand_up
from tests.support.stacks import synth
from tools.mockrun import StackRun

PROGRAM = synth("dev")


@pytest.fixture(scope="module")
def stood_up() -> Iterator[tuple[MotoServer, StoodUp]]:
    server = MotoServer(PROGRAM.config["aws:region"]).start()
    try:
        yield server, stand_up(PROGRAM, server)
    finally:
        server.stop()


def test_every_bucket_queue_topic_rule_and_role_exists_as_declared(
    stood_up: tuple[MotoServer, StoodUp],
) -> None:
    aws, _ = stood_up
    buckets = {b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]}
    assert buckets == {r.id for r in PROGRAM.of_type("aws:s3/bucket:Bucket")}
    data_bucket = PROGRAM.outputs["bucket"]
    assert aws.client("s3").get_bucket_versioning(Bucket=data_bucket)["Status"] == "Enabled"
    notification = aws.client("s3").get_bucket_notification_configuration(Bucket=data_bucket)
    assert [c["Events"] for c in notification["TopicConfigurations"]] == [["s3:ObjectCreated:*"]]

    rules = {r["Name"]: r["EventPattern"] for r in aws.client("events").list_rules()["Rules"]}
    declared = {r.id: r.inputs["eventPattern"] for r in PROGRAM.of_type("aws:cloudwatch/eventRule:EventRule")}
    assert {name: json.loads(p) for name, p in rules.items()} == {
        n: json.loads(p) for n, p in declared.items()
    }

    roles = {r["RoleName"] for r in aws.client("iam").list_roles()["Roles"]}
    assert roles == {r.id for r in PROGRAM.of_type("aws:iam/role:Role")}
    parameter = PROGRAM.one("aws:ssm/parameter:Parameter")
    assert aws.client("ssm").get_parameter(Name=parameter.inputs["name"])["Parameter"]["Value"] == "{}"


def test_queues_keep_their_redrive_and_the_key_moto_gave(stood_up: tuple[MotoServer, StoodUp]) -> None:
    aws, stood = stood_up
    queue_url = stood.translation.apply(PROGRAM.outputs["queue_url"])
    assert queue_url.startswith(aws.url)
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == int(PROGRAM.config["serverless-ml-pipeline:queueMaxReceiveCount"])
    assert redrive["deadLetterTargetArn"].endswith(PROGRAM.named("ingest-dlq").outputs["name"])
    key_id = attributes["KmsMasterKeyId"].rsplit("/", 1)[-1]
    assert aws.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"]


def test_functions_and_api_are_handed_on_with_the_emulators_values(
    stood_up: tuple[MotoServer, StoodUp],
) -> None:
    _, stood = stood_up
    deploy = next(r for r in stood.lambda_resources if r.name == "deploy-function")
    plan = json.loads(deploy.inputs["environment"]["variables"]["SERVING_PLAN"])
    mock_key = PROGRAM.one("aws:kms/key:Key").id
    assert mock_key not in plan["key_arn"] and plan["key_arn"].endswith(stood.translation.pairs[mock_key])
    assert {r.type for r in stood.api_resources} >= {
        "aws:apigateway/restApi:RestApi",
        "aws:apigateway/method:Method",
    }


def test_a_role_may_do_what_its_policy_allows_and_nothing_else(stood_up: tuple[MotoServer, StoodUp]) -> None:
    """moto judges S3 requests on the object's ARN: the transform may read raw uploads, not write them."""
    aws, _ = stood_up
    transform_role = PROGRAM.named("transform-role").outputs["arn"]
    session = aws.assume_role(transform_role, "transform")
    data_bucket = PROGRAM.outputs["bucket"]
    aws.client("s3").put_object(Bucket=data_bucket, Key="raw/sales/a.csv", Body=b"target,x\n1,2\n")
    aws.enforce_iam()
    try:
        as_transform = aws.client("s3", session)
        assert as_transform.get_object(Bucket=data_bucket, Key="raw/sales/a.csv")["Body"].read()
        with pytest.raises(ClientError) as denied:
            as_transform.put_object(Bucket=data_bucket, Key="raw/sales/a.csv", Body=b"overwritten")
        assert denied.value.response["Error"]["Code"] in ("AccessDenied", "403")
        with pytest.raises(ClientError, match=r"AccessDenied|not authorized"):
            aws.client("sqs", session).purge_queue(QueueUrl=aws.client("sqs").list_queues()["QueueUrls"][0])
    finally:
        aws.client("iam").get_user()  # the deployer still works under enforcement


def test_the_dashboard_exists_with_the_programs_body_naming_what_was_stood_up(
    stood_up: tuple[MotoServer, StoodUp],
) -> None:
    aws, stood = stood_up
    declared = PROGRAM.one("aws:cloudwatch/dashboard:Dashboard")
    cloudwatch = aws.client("cloudwatch")
    assert [d["DashboardName"] for d in cloudwatch.list_dashboards()["DashboardEntries"]] == [declared.id]
    body = json.loads(cloudwatch.get_dashboard(DashboardName=declared.id)["DashboardBody"])
    assert body == declared.json_input("dashboardBody")
    # Its queues are the queues moto holds, its functions the ones handed to the local Lambda service.
    dimensions = {
        (entry[i], entry[i + 1])
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for entry in widget["properties"]["metrics"]
        for i in range(2, len(entry) - 1, 2)
    }
    queues = {url.rsplit("/", 1)[-1] for url in aws.client("sqs").list_queues()["QueueUrls"]}
    assert {value for key, value in dimensions if key == "QueueName"} == queues
    functions = {r.outputs["name"] for r in stood.of_type("aws:lambda/function:Function")}
    assert {value for key, value in dimensions if key == "FunctionName"} == functions


def test_a_resource_type_the_rehearsal_cannot_stand_up_stops_it() -> None:
    novel = replace(PROGRAM.resources[-1], type="aws:dynamodb/table:Table", custom=True)
    with pytest.raises(UnsupportedResource, match="dynamodb/table"):
        stand_up(StackRun(PROGRAM.stack, PROGRAM.config, [novel], {}), MotoServer("eu-west-1"))


def test_moto_gets_what_it_cannot_judge_widened_never_narrowed() -> None:
    parameter = "arn:aws:ssm:eu-west-1:123456789012:parameter/p"
    conditional_list = {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": ["arn:aws:s3:::b"],
        "Condition": {},
    }
    conditional_deny = {
        "Effect": "Deny",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"Bool": {"x": "false"}},
    }
    two_services = {
        "Effect": "Allow",
        "Action": ["ssm:GetParameter", "sqs:SendMessage"],
        "Resource": [parameter],
    }
    document = {"Version": "2012-10-17", "Statement": [conditional_list, conditional_deny, two_services]}
    assert json.loads(moto_judgeable(json.dumps(document)))["Statement"] == [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": "arn:aws:s3:::b"},
        {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:SendMessageBatch"], "Resource": parameter},
        {"Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": "*"},
    ]
