"""Where the stack deploys: partition, region and account, for building ARNs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class AwsContext:
    partition: str
    region: str
    account_id: pulumi.Output[str]

    @staticmethod
    def for_region(region: str) -> AwsContext:
        return AwsContext(
            partition=partition_of(region),
            region=region,
            account_id=aws.get_caller_identity_output().account_id,
        )

    def arn(self, service: str, resource: str) -> pulumi.Output[str]:
        return self.account_id.apply(
            lambda account: f"arn:{self.partition}:{service}:{self.region}:{account}:{resource}"
        )

    def alarms_named(self, name_prefix: str) -> pulumi.Output[str]:
        """ARN pattern of this account's CloudWatch alarms in this region named with the prefix."""
        return self.arn("cloudwatch", f"alarm:{name_prefix}*")
