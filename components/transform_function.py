"""The transform function and what it needs to run: role, log group, queue trigger."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.packaging import build_package
from components.policy_documents import render
from components.service_role import service_role
from components.transform_policies import transform_policy
from settings import DatasetSettings, FunctionRuntime, TransformSettings

HANDLER = "transform.handler.lambda_handler"


@dataclass(frozen=True)
class TransformFunctionArgs:
    runtime: FunctionRuntime
    transform: TransformSettings
    layer_arns: list[str]
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    raw_prefix: str
    raw_suffix: str
    queue_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    dataset: DatasetSettings
    tuning_job_prefix: str
    tuning_jobs_arn: pulumi.Input[str]
    tuning_request_template: pulumi.Input[str]
    training_role_arn: pulumi.Input[str]


class TransformFunction(pulumi.ComponentResource):
    """Creates the transform Lambda function with:

    - its own role, allowed exactly what the function and its SQS trigger use: read upload versions,
      read and write `processed/`, write `rejected/`, receive/delete on its queue, the data key, create
      this stack's tuning jobs and pass them the training role, its own log group;
    - the dataset settings (target column, problem type, split, rejection threshold, category limit,
      part file size) and the stack's tuning request template in its environment;
    - a log group kept for `logRetentionDays`, written as structured JSON at `logLevel`;
    - the SQS event source mapping with partial batch responses (`ReportBatchItemFailures`), batch size,
      batching window and maximum concurrency from config;
    - the code package built from `functions/transform` and `functions/shared`, and the Powertools layer.
    """

    def __init__(
        self, name: str, args: TransformFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:TransformFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        runtime, transform = args.runtime, args.transform

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", retention_in_days=runtime.log_retention_days, opts=child
        )
        access = service_role(
            name,
            service_principal="lambda.amazonaws.com",
            description=f"Runs the {name} function",
            policy=render(
                transform_policy,
                bucket_arn=args.bucket_arn,
                raw_prefix=args.raw_prefix,
                queue_arn=args.queue_arn,
                key_arn=args.key_arn,
                log_group_arn=self.log_group.arn,
                tuning_jobs_arn=args.tuning_jobs_arn,
                training_role_arn=args.training_role_arn,
            ),
            parent=self,
        )
        self.role = access.role
        self.function = aws.lambda_.Function(
            f"{name}-function",
            role=self.role.arn,
            runtime=runtime.runtime,
            architectures=[runtime.architecture],
            handler=HANDLER,
            code=pulumi.FileArchive(build_package("transform").relative_to(Path.cwd()).as_posix()),
            memory_size=transform.memory_mb,
            timeout=transform.timeout_seconds,
            layers=args.layer_arns,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "DATA_BUCKET": args.bucket_name,
                    "RAW_PREFIX": args.raw_prefix,
                    "RAW_SUFFIX": args.raw_suffix,
                    "TARGET_COLUMN": args.dataset.target_column,
                    "PROBLEM_TYPE": args.dataset.problem_type,
                    "VALIDATION_PERCENT": str(args.dataset.validation_percent),
                    "MAX_REJECTED_ROWS_PERCENT": str(args.dataset.max_rejected_rows_percent),
                    "MAX_CATEGORIES": str(args.dataset.max_categories),
                    "PART_FILE_MB": str(args.dataset.part_file_mb),
                    "TUNING_JOB_PREFIX": args.tuning_job_prefix,
                    "TUNING_REQUEST_TEMPLATE": args.tuning_request_template,
                    "TIMEOUT_SECONDS": str(transform.timeout_seconds),
                    "POWERTOOLS_SERVICE_NAME": name,
                }
            ),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON",
                log_group=self.log_group.name,
                application_log_level=runtime.log_level,
                system_log_level="WARN",
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access.policy]),
        )
        # Creating the mapping checks that the role can read the queue: the role policy must exist first.
        self.trigger = aws.lambda_.EventSourceMapping(
            f"{name}-trigger",
            event_source_arn=args.queue_arn,
            function_name=self.function.arn,
            batch_size=transform.batch_size,
            maximum_batching_window_in_seconds=transform.batching_window_seconds,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=transform.max_concurrency
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access.policy]),
        )
        self.register_outputs({"function_name": self.function.name, "log_group": self.log_group.name})
