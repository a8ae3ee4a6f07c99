"""The tune function: consumes tuning requests and starts one tuning job per quiet burst of a dataset."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.event_bus import StackKey
from components.policy_documents import render
from components.python_function import PythonFunctionArgs, python_function
from components.tune_policies import tune_policy, tuning_dead_letter_policy, tuning_queue_policy
from components.tuning_queue import TUNE_TIMEOUT_SECONDS, TuningQueue
from settings import FunctionRuntime, TrainingSettings

HANDLER = "tune.handler.lambda_handler"
# Lists a dataset's manifests and writes a few small objects: the smallest memory that imports boto3 and
# Powertools quickly.
TUNE_MEMORY_MB = 256
# A batch of requests is usually one dataset's burst; 10 is the most without a batching window (Lambda API
# reference, CreateEventSourceMapping).
TUNE_BATCH_SIZE = 10
# The event source mapping's lowest MaximumConcurrency: requests of different datasets may run at once.
TUNE_MAX_CONCURRENCY = 2


@dataclass(frozen=True)
class TuneFunctionArgs:
    runtime: FunctionRuntime
    training: TrainingSettings
    layer_arns: list[str]
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    requests: TuningQueue
    # The transform's role sends the requests of complete runs.
    transform_role_arn: pulumi.Input[str]
    key: StackKey
    tuning_job_prefix: str
    tuning_jobs_arn: pulumi.Input[str]
    tuning_request_template: pulumi.Input[str]
    training_role_arn: pulumi.Input[str]


class TuneFunction(pulumi.ComponentResource):
    """Creates the tune Lambda function with:

    - its own role, allowed exactly what the function and its SQS trigger use: list and read `processed/`,
      write channel manifests, schema and records there, receive/delete on the tuning-request queue and
      send deferred requests back to it, the data key, create this stack's tuning jobs and pass them the
      training role, its own log group;
    - the queue policies: only the transform's role and this function's may send requests, nobody sends
      to the dead-letter queue (SQS redrives there itself), TLS only;
    - the stack's tuning request template and `tuningJobsPerDay` in its environment;
    - the SQS event source mapping with partial batch responses (`ReportBatchItemFailures`);
    - the code package built from `functions/tune` and `functions/shared`, and the Powertools layer.
    """

    def __init__(self, name: str, args: TuneFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:TuneFunction", name, None, opts)
        queue = args.requests.queue
        made = python_function(
            name,
            PythonFunctionArgs(
                runtime=args.runtime,
                package="tune",
                handler=HANDLER,
                memory_mb=TUNE_MEMORY_MB,
                timeout_seconds=TUNE_TIMEOUT_SECONDS,
                layer_arns=args.layer_arns,
                log_key=args.key,
                policy=lambda log_group_arn: render(
                    tune_policy,
                    bucket_arn=args.bucket_arn,
                    queue_arn=queue.arn,
                    key_arn=args.key.arn,
                    log_group_arn=log_group_arn,
                    tuning_jobs_arn=args.tuning_jobs_arn,
                    training_role_arn=args.training_role_arn,
                ),
                environment={
                    "DATA_BUCKET": args.bucket_name,
                    "TUNING_JOB_PREFIX": args.tuning_job_prefix,
                    "TUNING_REQUEST_TEMPLATE": args.tuning_request_template,
                    "TUNING_QUEUE_URL": queue.url,
                    "TUNING_JOBS_PER_DAY": str(args.training.jobs_per_day),
                },
            ),
            parent=self,
        )
        self.log_group, self.role, self.function = made.log_group, made.access.role, made.function
        child = pulumi.ResourceOptions(parent=self)
        aws.sqs.QueuePolicy(
            f"{name}-requests-policy",
            queue_url=queue.url,
            policy=render(
                tuning_queue_policy,
                queue_arn=queue.arn,
                sender_role_arns=[args.transform_role_arn, self.role.arn],
            ),
            opts=child,
        )
        dead_letters = args.requests.dead_letter_queue
        aws.sqs.QueuePolicy(
            f"{name}-requests-dlq-policy",
            queue_url=dead_letters.url,
            policy=render(tuning_dead_letter_policy, queue_arn=dead_letters.arn),
            opts=child,
        )
        # Creating the mapping checks that the role can read the queue: the role policy must exist first.
        self.trigger = aws.lambda_.EventSourceMapping(
            f"{name}-trigger",
            event_source_arn=queue.arn,
            function_name=self.function.arn,
            batch_size=TUNE_BATCH_SIZE,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=TUNE_MAX_CONCURRENCY
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[made.access.policy]),
        )
        self.register_outputs({"function_name": self.function.name, "log_group": self.log_group.name})
