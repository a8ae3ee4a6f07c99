"""The tuning-request queue: where complete runs ask the tune function to consider their dataset.

The transform sends each request delayed by the quiet period; the tune function consumes them and sends
deferred ones back to itself. Messages the tune function could not handle move to the dead-letter queue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.event_bus import DEAD_LETTER_RETENTION_SECONDS, QUEUE_RETENTION_SECONDS

# The tune function reads a dataset's manifests and writes two channel manifests: seconds, not minutes.
TUNE_TIMEOUT_SECONDS = 120
# Lambda developer guide, "Using Lambda with Amazon SQS": the queue's visibility timeout should be at least
# six times the function timeout (no batching window here).
VISIBILITY_TIMEOUT_SECONDS = 6 * TUNE_TIMEOUT_SECONDS


@dataclass(frozen=True)
class TuningQueueArgs:
    key_arn: pulumi.Input[str]
    max_receive_count: int


class TuningQueue(pulumi.ComponentResource):
    """Creates the tuning-request queue and its dead-letter queue, both encrypted with the stack key; the
    queue redrives to the DLQ after `queueMaxReceiveCount` receives, only it may redrive there, and the DLQ
    keeps messages 14 days. Who may send is the tune function's to say (components/tune_function.py),
    which knows both senders."""

    def __init__(self, name: str, args: TuningQueueArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:TuningQueue", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dlq",
            kms_master_key_id=args.key_arn,
            message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS,
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            kms_master_key_id=args.key_arn,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS,
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda dlq_arn: json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": args.max_receive_count}
                )
            ),
            opts=child,
        )
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-redrive-allow",
            queue_url=self.dead_letter_queue.url,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
            ),
            opts=child,
        )
        self.register_outputs(
            {"queue_url": self.queue.url, "dead_letter_queue_url": self.dead_letter_queue.url}
        )
