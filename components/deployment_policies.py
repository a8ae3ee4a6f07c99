"""IAM and resource policies of the model deployment: the deploy function's role, the role SageMaker
hosts models with, and the dead-letter queue that takes the events the function could not handle."""

from __future__ import annotations

from components.policy_documents import Document, allow, deny_insecure_transport, document, service
from components.training_policies import MODELS_PREFIX, TRAINING_DATA_PREFIX, algorithm_container

SAGEMAKER = "sagemaker.amazonaws.com"
RECORDS_PREFIX = "deployments/"
# Where challengers wait for a busy endpoint (functions/deploy/deferral.py).
DEFERRED_PREFIX = f"{RECORDS_PREFIX}deferred/"
# What the endpoint serves, for the predict function (functions/deploy/serving_record.py).
SERVING_RECORD_KEY = f"{RECORDS_PREFIX}serving.json"
CAPTURE_PREFIX = "capture/"
# The batch transform jobs of a contest write their predictions here (functions/deploy/contest_jobs.py)
# and read the validation rows the transform function wrote under `processed/`.
CONTEST_PREFIX = f"{RECORDS_PREFIX}contest/"
# Application Auto Scaling's service-linked role for SageMaker variants (Application Auto Scaling user
# guide, "Service-linked roles"): created by the first RegisterScalableTarget of the account.
SCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
SCALING_ROLE = f"aws-service-role/{SCALING_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
# Endpoints log to `/aws/sagemaker/Endpoints/<endpoint name>` (SageMaker developer guide, "Log Amazon
# SageMaker AI events with Amazon CloudWatch").
ENDPOINT_LOG_GROUP = "/aws/sagemaker/Endpoints"
# Batch transform jobs log to `/aws/sagemaker/TransformJobs` (same guide).
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"


def deploy_policy(
    *,
    partition: str,
    account_id: str,
    region: str,
    tuning_job_prefix: str,
    endpoint_name: str,
    bucket_arn: str,
    key_arn: str,
    model_role_arn: str,
    dead_letter_queue_arn: str,
    log_group_arn: str,
    rollback_alarm_name: str,
    champion_parameter: str,
) -> Document:
    """Judge finished tuning jobs on the same rows as the champion, host the winner, tidy and tear down
    what it hosted, record outcomes."""

    def sagemaker(resource: str) -> str:
        return f"arn:{partition}:sagemaker:{region}:{account_id}:{resource}"

    endpoint = sagemaker(f"endpoint/{endpoint_name}")
    configs = sagemaker(f"endpoint-config/{tuning_job_prefix}-*")
    models = sagemaker(f"model/{tuning_job_prefix}-*")
    # Contest transform jobs are named after their tuning job.
    transform_jobs = sagemaker(f"transform-job/{tuning_job_prefix}-*")
    scaling = {
        "StringEquals": {
            "application-autoscaling:service-namespace": "sagemaker",
            "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
        }
    }
    champion_record = (
        [
            allow(
                "KeepChampionRecord",
                ["ssm:GetParameter", "ssm:PutParameter"],
                [f"arn:{partition}:ssm:{region}:{account_id}:parameter{champion_parameter}"],
            )
        ]
        if champion_parameter
        else []
    )
    return document(
        *champion_record,
        allow(
            "ReadTuningResults",
            ["sagemaker:DescribeHyperParameterTuningJob", "sagemaker:StopHyperParameterTuningJob"],
            [sagemaker(f"hyper-parameter-tuning-job/{tuning_job_prefix}-*")],
        ),
        # A tuning job's training jobs are named after it.
        allow(
            "ReadBestTrainingJob",
            ["sagemaker:DescribeTrainingJob"],
            [sagemaker(f"training-job/{tuning_job_prefix}-*")],
        ),
        # The List actions have no resource type (Service Authorization Reference, SageMaker).
        allow(
            "FindStackResources",
            [
                "sagemaker:ListHyperParameterTuningJobs",
                "sagemaker:ListEndpointConfigs",
                "sagemaker:ListModels",
                "sagemaker:ListTransformJobs",
            ],
            ["*"],
        ),
        # Creating a tagged transform job also needs AddTags on it; teardown stops running ones.
        allow(
            "ScoreOnSameRows",
            [
                "sagemaker:CreateTransformJob",
                "sagemaker:DescribeTransformJob",
                "sagemaker:StopTransformJob",
                "sagemaker:AddTags",
            ],
            [transform_jobs],
        ),
        # Creating a tagged resource also needs AddTags on it (SageMaker developer guide, "Provide
        # permissions for tagging SageMaker AI resources").
        allow(
            "HostModels",
            [
                "sagemaker:CreateModel",
                "sagemaker:DescribeModel",
                "sagemaker:DeleteModel",
                "sagemaker:AddTags",
            ],
            [models],
        ),
        allow(
            "ConfigureEndpoint",
            [
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:ListTags",
                "sagemaker:AddTags",
            ],
            [configs],
        ),
        # CreateEndpoint and UpdateEndpoint are authorised on the endpoint and on the config it is given.
        allow("ServeFromConfigs", ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"], [configs]),
        allow(
            "ManageEndpoint",
            [
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DeleteEndpoint",
                "sagemaker:AddTags",
            ],
            [endpoint],
        ),
        allow(
            "PassModelRole",
            ["iam:PassRole"],
            [model_role_arn],
            Condition={"StringEquals": {"iam:PassedToService": SAGEMAKER}},
        ),
        # Scalable targets get ARNs only when registered, so the actions are limited by condition to
        # SageMaker variant instance counts (Service Authorization Reference, Application Auto Scaling).
        allow(
            "ScaleEndpoint",
            [
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:DeregisterScalableTarget",
            ],
            ["*"],
            Condition=scaling,
        ),
        # Application Auto Scaling checks that its caller may itself do what scaling does: change the
        # variant's capacity and manage the target tracking alarms (Application Auto Scaling user guide,
        # "Permissions validation").
        # SageMaker developer guide, "Configure deployment guardrails": the role must be able to
        # DescribeAlarms the auto-rollback alarms an update names.
        allow(
            "ReadRollbackAlarm",
            ["cloudwatch:DescribeAlarms"],
            [f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:{rollback_alarm_name}"],
        ),
        allow("LetScalingResizeEndpoint", ["sagemaker:UpdateEndpointWeightsAndCapacities"], [endpoint]),
        allow(
            "LetScalingManageAlarms",
            ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
            [
                f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:TargetTracking-endpoint/{endpoint_name}/*"
            ],
        ),
        allow(
            "CreateScalingServiceRole",
            ["iam:CreateServiceLinkedRole"],
            [f"arn:{partition}:iam::{account_id}:role/{SCALING_ROLE}"],
            Condition={"StringLike": {"iam:AWSServiceName": SCALING_SERVICE}},
        ),
        allow("WriteRecords", ["s3:PutObject"], [f"{bucket_arn}/{RECORDS_PREFIX}*"]),
        allow(
            "FindDeferredChallengers",
            ["s3:ListBucket"],
            [bucket_arn],
            Condition={"StringEquals": {"s3:prefix": DEFERRED_PREFIX}},
        ),
        allow(
            "ClearDeferredChallengersAndServingRecord",
            ["s3:DeleteObject"],
            [f"{bucket_arn}/{DEFERRED_PREFIX}*", f"{bucket_arn}/{SERVING_RECORD_KEY}"],
        ),
        # The validation rows' labels (and a manifest naming them), and both models' predictions of them.
        allow(
            "ReadContestRows",
            ["s3:GetObject"],
            [f"{bucket_arn}/{TRAINING_DATA_PREFIX}*", f"{bucket_arn}/{CONTEST_PREFIX}*"],
        ),
        allow(
            "FindValidationRows",
            ["s3:ListBucket"],
            [bucket_arn],
            Condition={"StringLike": {"s3:prefix": [f"{TRAINING_DATA_PREFIX}*"]}},
        ),
        allow("DecryptContestRows", ["kms:Decrypt"], [key_arn]),
        allow("EncryptRecords", ["kms:GenerateDataKey"], [key_arn]),
        allow("SendFailedEvents", ["sqs:SendMessage"], [dead_letter_queue_arn]),
        allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
    )


def model_policy(
    *,
    bucket_arn: str,
    key_arn: str,
    image_repository_arn: str,
    log_group_arn: str,
    transform_log_group_arn: str,
    rollback_alarm_arn: str,
    capture: bool,
) -> Document:
    """What SageMaker needs to host a model or run its contest transform job (the job runs as the model's
    ExecutionRoleArn): its artifact, the image, logs, metrics, the validation rows in and the predictions
    out, and captured data."""
    statements = [
        allow("ReadModelArtifacts", ["s3:GetObject"], [f"{bucket_arn}/{MODELS_PREFIX}*"]),
        allow("DecryptModelArtifacts", ["kms:Decrypt"], [key_arn]),
        *algorithm_container(
            log_group_arns=[log_group_arn, transform_log_group_arn], image_repository_arn=image_repository_arn
        ),
        allow("ReadValidationRows", ["s3:GetObject"], [f"{bucket_arn}/{TRAINING_DATA_PREFIX}*"]),
        allow(
            "ListValidationRows",
            ["s3:ListBucket"],
            [bucket_arn],
            Condition={"StringLike": {"s3:prefix": [f"{TRAINING_DATA_PREFIX}*"]}},
        ),
        allow("WriteContestPredictions", ["s3:PutObject"], [f"{bucket_arn}/{CONTEST_PREFIX}*"]),
        # TransformOutput.KmsKeyId: the predictions are written under the stack key.
        allow("EncryptContestPredictions", ["kms:GenerateDataKey", "kms:Encrypt"], [key_arn]),
        # The developer guide asks it of the endpoint's "IAM execution role" ("Configure deployment
        # guardrails"); the deploy role, which names the alarm in UpdateEndpoint, has it too.
        allow("ReadRollbackAlarm", ["cloudwatch:DescribeAlarms"], [rollback_alarm_arn]),
    ]
    if capture:
        statements += [
            allow("WriteCapturedData", ["s3:PutObject"], [f"{bucket_arn}/{CAPTURE_PREFIX}*"]),
            allow("EncryptCapturedData", ["kms:GenerateDataKey", "kms:Encrypt"], [key_arn]),
        ]
    return document(*statements)


def dead_letter_queue_policy(*, queue_arn: str, rule_arns: list[str]) -> Document:
    """EventBridge may send the events of these rules that it could not deliver, over TLS (EventBridge
    user guide, "Using dead-letter queues to process undelivered events")."""
    return document(
        allow(
            "RulesSendUndeliveredEvents",
            ["sqs:SendMessage"],
            [queue_arn],
            Principal=service("events.amazonaws.com"),
            Condition={"ArnEquals": {"aws:SourceArn": rule_arns}},
        ),
        deny_insecure_transport(["sqs:SendMessage"], [queue_arn]),
    )
