"""IAM policies of the prediction API: the predict function's role and the role API Gateway logs with."""

from __future__ import annotations

from components.deployment_policies import RECORDS_PREFIX
from components.policy_documents import Document, allow, document

# What the deploy function writes whenever the endpoint serves a model (functions/deploy/serving_record.py).
SERVING_RECORD_KEY = f"{RECORDS_PREFIX}serving.json"
# Where the transform keeps each dataset's contract: `processed/<dataset>/schema.json`.
SCHEMA_KEYS = "processed/*/schema.json"
# The AWS-managed policy API Gateway's account-level CloudWatch role needs (API Gateway developer guide,
# "Set up CloudWatch logging for REST APIs in API Gateway").
API_GATEWAY_LOGGING_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


def predict_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    endpoint_name: str,
    bucket_arn: str,
    key_arn: str,
    log_group_arn: str,
) -> Document:
    """Read which model serves and its dataset's schema, invoke the stack's endpoint, write its own logs."""
    # SageMaker puts resource names into ARNs in lower case, and IAM compares ARNs case-sensitively: a
    # name with capitals would otherwise never match.
    endpoint_arn = f"arn:{partition}:sagemaker:{region}:{account_id}:endpoint/{endpoint_name.lower()}"
    return document(
        allow("InvokeStackEndpoint", ["sagemaker:InvokeEndpoint"], [endpoint_arn]),
        allow(
            "ReadServingModelAndSchema",
            ["s3:GetObject"],
            [f"{bucket_arn}/{SERVING_RECORD_KEY}", f"{bucket_arn}/{SCHEMA_KEYS}"],
        ),
        # Without ListBucket S3 answers a read of a missing key (no model served yet) with 403, not 404
        # (S3 API reference, GetObject, "Permissions"): the function could not tell "nothing deployed".
        allow("TellMissingKeys", ["s3:ListBucket"], [bucket_arn]),
        # The serving record and the schemas are written under SSE-KMS with the stack key.
        allow("DecryptData", ["kms:Decrypt"], [key_arn]),
        allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
    )


def api_gateway_logging_policy_arn(partition: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{API_GATEWAY_LOGGING_POLICY}"


def invoke_policy(*, execution_arn: str, stage: str, methods: list[tuple[str, str]]) -> Document:
    """Call the API's methods on its stage, and nothing else: what an identity needs when the methods use
    IAM authorization. `methods` are (HTTP method, path) pairs such as ("POST", "predict"); an ARN per
    method is `arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/<path>` (API Gateway
    developer guide, "Control access to a REST API with IAM permissions", execute-api:Invoke resources)."""
    return document(
        allow(
            "InvokePredictionApi",
            ["execute-api:Invoke"],
            [f"{execution_arn}/{stage}/{method}/{path}" for method, path in methods],
        )
    )
