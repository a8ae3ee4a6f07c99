"""The transform function and what it needs to run: role, log group, queue trigger."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.event_bus import StackKey
from components.policy_documents import render
from components.python_function import PythonFunctionArgs, python_function
from components.transform_policies import transform_policy
from settings import DatasetSettings, FunctionRuntime, TrainingSettings, TransformSettings

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
    # The stack key: the role decrypts with it, the log groups are encrypted with it.
    key: StackKey
    dataset: DatasetSettings
    # The quiet period and the objective metric (each upload's problem type is checked against it).
    training: TrainingSettings
    tuning_queue_arn: pulumi.Input[str]
    tuning_queue_url: pulumi.Input[str]


class TransformFunction(pulumi.ComponentResource):
    """Creates the transform Lambda function with:

    - its own role, allowed exactly what the function and its SQS trigger use: read upload versions,
      read and write `processed/`, write `rejected/`, receive/delete on its queue, send to the
      tuning-request queue, the data key, its own log group;
    - the dataset settings (target column, problem type, split, rejection threshold, category limit,
      fewest labeled rows, part file size), the stack's objective metric, the tuning-request queue and
      `tuningQuietSeconds` (each run's request is delayed by it) in its environment;
    - a log group kept for `logRetentionDays` and encrypted with the stack key, written as structured
      JSON at `logLevel`;
    - the SQS event source mapping with partial batch responses (`ReportBatchItemFailures`), batch size,
      batching window and maximum concurrency from config;
    - the code package built from `functions/transform` and `functions/shared`, and the Powertools layer.
    """

    def __init__(
        self, name: str, args: TransformFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:TransformFunction", name, None, opts)
        runtime, transform = args.runtime, args.transform

        made = python_function(
            name,
            PythonFunctionArgs(
                runtime=runtime,
                package="transform",
                handler=HANDLER,
                memory_mb=transform.memory_mb,
                timeout_seconds=transform.timeout_seconds,
                layer_arns=args.layer_arns,
                log_key=args.key,
                policy=lambda log_group_arn: render(
                    transform_policy,
                    bucket_arn=args.bucket_arn,
                    raw_prefix=args.raw_prefix,
                    queue_arn=args.queue_arn,
                    key_arn=args.key.arn,
                    log_group_arn=log_group_arn,
                    tuning_queue_arn=args.tuning_queue_arn,
                ),
                environment={
                    "DATA_BUCKET": args.bucket_name,
                    "RAW_PREFIX": args.raw_prefix,
                    "RAW_SUFFIX": args.raw_suffix,
                    "TARGET_COLUMN": args.dataset.target_column,
                    "PROBLEM_TYPE": args.dataset.problem_type,
                    "VALIDATION_PERCENT": str(args.dataset.validation_percent),
                    "MAX_REJECTED_ROWS_PERCENT": str(args.dataset.max_rejected_rows_percent),
                    "MAX_CATEGORIES": str(args.dataset.max_categories),
                    "MIN_LABELED_ROWS": str(args.dataset.min_labeled_rows),
                    "PART_FILE_MB": str(args.dataset.part_file_mb),
                    "TUNING_OBJECTIVE_METRIC": args.training.objective_metric or "auto",
                    "TUNING_QUEUE_URL": args.tuning_queue_url,
                    "TUNING_QUIET_SECONDS": str(args.training.quiet_seconds),
                    "TIMEOUT_SECONDS": str(transform.timeout_seconds),
                },
            ),
            parent=self,
        )
        self.log_group, self.role, self.function = made.log_group, made.access.role, made.function
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[made.access.policy]),
        )
        self.register_outputs({"function_name": self.function.name, "log_group": self.log_group.name})
