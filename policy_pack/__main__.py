"""The policy pack: `pulumi preview --policy-pack policy_pack` runs every guardrail, each mandatory."""

from pulumi_policy import EnforcementLevel, PolicyPack

from guardrails import GUARDRAILS

PolicyPack(
    name="serverless-ml-pipeline-guardrails",
    policies=[guardrail.policy for guardrail in GUARDRAILS],
    enforcement_level=EnforcementLevel.MANDATORY,
)
