"""The actions this program grants on "*", and why AWS leaves no narrower resource to name.

From the Service Authorization Reference ("Actions, resources, and condition keys" of each service): an
action whose row lists no resource type can only be granted on "*"; an action whose resource's ARN ends in
an identifier AWS assigns when it creates it cannot be named before it exists, so it is granted on "*"
narrowed by the condition keys listed here. An action not in either table is granted on named resources.
"""

from __future__ import annotations

NO_RESOURCE_TYPE = frozenset(
    {
        # Amazon ECR: the registry's authorization token is account-wide.
        "ecr:GetAuthorizationToken",
        # CloudWatch: metric data has no resource; the namespace is a condition key.
        "cloudwatch:PutMetricData",
        # SageMaker: the List actions.
        "sagemaker:ListHyperParameterTuningJobs",
        "sagemaker:ListEndpointConfigs",
        "sagemaker:ListModels",
        "sagemaker:ListTransformJobs",
        # AWS X-Ray: what AWSXRayDaemonWriteAccess grants for active tracing.
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
)

# Application Auto Scaling: scalable-target ARNs end in an identifier assigned at registration; the
# service namespace condition key names what may be scaled.
ASSIGNED_ARN_CONDITIONS = {
    "application-autoscaling:RegisterScalableTarget": "application-autoscaling:service-namespace",
    "application-autoscaling:PutScalingPolicy": "application-autoscaling:service-namespace",
    "application-autoscaling:DeregisterScalableTarget": "application-autoscaling:service-namespace",
}
