"""A WAF web ACL in front of the prediction API's stage: a rate-based rule per client IP address.

The usage plan throttles the API key, which every caller of a stack shares; a rate-based rule counts each
source IP on its own, so one client cannot spend everyone's quota, and WAF blocks it before API Gateway
runs (or bills) anything. Off unless `apiWafRateLimit` is set (WAF bills a web ACL and each rule by the
month, and requests by the million).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# WAF accepts a stage of a REST API in a regional web ACL (WAF developer guide, "Resources that you can
# protect"); CLOUDFRONT scope is for distributions.
SCOPE = "REGIONAL"
# The rate rule's name, also its CloudWatch metric's.
RATE_RULE = "requests-per-ip"


@dataclass(frozen=True)
class ApiFirewallArgs:
    # Requests one IP address may make within the window before WAF blocks it (botocore wafv2 model,
    # RateBasedStatement Limit: 10 to 2,000,000,000).
    rate_limit: int
    # RateBasedStatement EvaluationWindowSec: 60, 120, 300 or 600.
    window_seconds: int
    stage_arn: pulumi.Input[str]


class ApiFirewall(pulumi.ComponentResource):
    """Creates a REGIONAL web ACL that allows by default and blocks (403) an IP address past `rate_limit`
    requests in `window_seconds`, with CloudWatch metrics and sampled requests, and associates it with the
    stage."""

    def __init__(self, name: str, args: ApiFirewallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:ApiFirewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.web_acl = aws.wafv2.WebAcl(
            f"{name}-acl",
            description="Rate limit per client IP address in front of the prediction API",
            scope=SCOPE,
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=[
                aws.wafv2.WebAclRuleArgs(
                    name=RATE_RULE,
                    priority=0,
                    action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
                    statement=aws.wafv2.WebAclRuleStatementArgs(
                        rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                            limit=args.rate_limit,
                            aggregate_key_type="IP",
                            evaluation_window_sec=args.window_seconds,
                        )
                    ),
                    visibility_config=aws.wafv2.WebAclRuleVisibilityConfigArgs(
                        cloudwatch_metrics_enabled=True, metric_name=RATE_RULE, sampled_requests_enabled=True
                    ),
                )
            ],
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name=f"{name}-acl", sampled_requests_enabled=True
            ),
            opts=child,
        )
        self.association = aws.wafv2.WebAclAssociation(
            f"{name}-association", resource_arn=args.stage_arn, web_acl_arn=self.web_acl.arn, opts=child
        )
        self.register_outputs({"web_acl_arn": self.web_acl.arn})
