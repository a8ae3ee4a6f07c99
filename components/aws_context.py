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

    def arn(self, service: str, resource: str, *, regional: bool = True) -> pulumi.Output[str]:
        region = self.region if regional else ""
        return self.account_id.apply(
            lambda account: f"arn:{self.partition}:{service}:{region}:{account}:{resource}"
        )
