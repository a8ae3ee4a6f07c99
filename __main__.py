"""serverless-ml-pipeline: stack config -> components -> stack outputs. No resource logic lives here."""

import pulumi

from components.aws_context import AwsContext
from components.dashboard import Dashboard, DashboardArgs
from components.deployment import Deployment, DeploymentArgs
from components.event_bus import EventBus, EventBusArgs
from components.monitoring import ENDPOINT_ERRORS, Monitoring, MonitoringArgs, alarm_name
from components.powertools import powertools_layer_arn
from components.prediction_api import PredictionApi, PredictionApiArgs
from components.training import Training, TrainingArgs
from components.transform_function import TransformFunction, TransformFunctionArgs
from components.tune_function import TuneFunction, TuneFunctionArgs
from components.tuning_queue import TuningQueue, TuningQueueArgs
from settings import InvalidStackConfig, load_settings, read_stack_config

try:
    settings = load_settings(read_stack_config(), stack=pulumi.get_stack())
except InvalidStackConfig as error:
    raise pulumi.RunError(str(error)) from None

aws_context = AwsContext.for_region(settings.region)
powertools = powertools_layer_arn(
    partition=aws_context.partition,
    region=settings.region,
    runtime=settings.functions.runtime,
    architecture=settings.functions.architecture,
    version=settings.functions.powertools_layer_version,
)

bus = EventBus(
    "ingest",
    EventBusArgs(
        aws=aws_context,
        data=settings.data,
        queue=settings.queue,
        alarm_name_prefix=settings.alarm_name_prefix,
    ),
)
training = Training(
    "training",
    TrainingArgs(
        aws=aws_context,
        training=settings.training,
        stack=settings.stack,
        bucket_name=bus.bucket.bucket,
        bucket_arn=bus.bucket.arn,
        key_arn=bus.key.arn,
    ),
)
tuning_requests = TuningQueue(
    "tuning-requests",
    TuningQueueArgs(key_arn=bus.key.arn, max_receive_count=settings.queue.max_receive_count),
)
transform = TransformFunction(
    "transform",
    TransformFunctionArgs(
        runtime=settings.functions,
        transform=settings.transform,
        layer_arns=[powertools],
        bucket_name=bus.bucket.bucket,
        bucket_arn=bus.bucket.arn,
        raw_prefix=settings.data.raw_prefix,
        raw_suffix=settings.data.raw_suffix,
        queue_arn=bus.queue.arn,
        key=bus.stack_key,
        dataset=settings.dataset,
        training=settings.training,
        tuning_queue_arn=tuning_requests.queue.arn,
        tuning_queue_url=tuning_requests.queue.url,
    ),
)
tune = TuneFunction(
    "tune",
    TuneFunctionArgs(
        runtime=settings.functions,
        training=settings.training,
        layer_arns=[powertools],
        bucket_name=bus.bucket.bucket,
        bucket_arn=bus.bucket.arn,
        requests=tuning_requests,
        transform_role_arn=transform.role.arn,
        key=bus.stack_key,
        tuning_job_prefix=settings.tuning_job_prefix,
        tuning_jobs_arn=aws_context.arn(
            "sagemaker", f"hyper-parameter-tuning-job/{settings.tuning_job_prefix}-*"
        ),
        tuning_request_template=training.request_template,
        training_role_arn=training.role.arn,
    ),
)
deployment = Deployment(
    "deploy",
    DeploymentArgs(
        aws=aws_context,
        runtime=settings.functions,
        endpoint=settings.endpoint,
        layer_arns=[powertools],
        project=settings.project,
        stack=settings.stack,
        tuning_job_prefix=settings.tuning_job_prefix,
        endpoint_name=settings.endpoint_name,
        rollback_alarm_name=alarm_name(settings.alarm_name_prefix, ENDPOINT_ERRORS),
        champion_store=settings.champion_store,
        metrics_namespace=settings.metrics_namespace,
        bucket_name=bus.bucket.bucket,
        bucket_arn=bus.bucket.arn,
        key=bus.stack_key,
        image_repository_arn=training.image_repository_arn,
    ),
)
api = PredictionApi(
    "predict",
    PredictionApiArgs(
        aws=aws_context,
        runtime=settings.functions,
        prediction=settings.prediction,
        api=settings.api,
        layer_arns=[powertools],
        endpoint_name=settings.endpoint_name,
        endpoint_serverless=settings.endpoint.serverless,
        metrics_namespace=settings.metrics_namespace,
        bucket_name=bus.bucket.bucket,
        bucket_arn=bus.bucket.arn,
        key=bus.stack_key,
        protect_data=settings.data.protect,
    ),
)
# The stack's functions by the part they serve: alarmed by monitoring, graphed by the dashboard.
function_names = {
    "transform": transform.function.name,
    "tune": tune.function.name,
    "deploy": deployment.function.name,
    "predict": api.function.name,
}
monitoring = Monitoring(
    "monitoring",
    MonitoringArgs(
        aws=aws_context,
        alarm_name_prefix=settings.alarm_name_prefix,
        key_arn=bus.key.arn,
        alarm_email=settings.alarm_email,
        dead_letter_queue_names={
            "dead-letters": bus.dead_letter_queue.name,
            "tuning-dead-letters": tuning_requests.dead_letter_queue.name,
            "deploy-dead-letters": deployment.dead_letter_queue.name,
        },
        function_names=function_names,
        endpoint_name=settings.endpoint_name,
        deploy_metrics_namespace=settings.metrics_namespace,
        deploy_service="deploy",
        api_name=api.rest_api.name,
        api_stage=api.stage.stage_name,
    ),
)

dashboard = Dashboard(
    "dashboard",
    DashboardArgs(
        aws=aws_context,
        project=settings.project,
        stack=settings.stack,
        queue_names={"uploads": bus.queue.name, "tuning requests": tuning_requests.queue.name},
        dead_letter_queue_names={
            "ingest dead letters": bus.dead_letter_queue.name,
            "tuning request dead letters": tuning_requests.dead_letter_queue.name,
            "deploy dead letters": deployment.dead_letter_queue.name,
        },
        function_names=function_names,
        deploy_metrics_namespace=settings.metrics_namespace,
        deploy_service="deploy",
        tuning_rule_name=deployment.rules["tuning"].name,
        endpoint_name=settings.endpoint_name,
        api_name=api.rest_api.name,
        api_stage=api.stage.stage_name,
    ),
)

pulumi.export("bucket", bus.bucket.bucket)
pulumi.export("upload_prefix", settings.data.raw_prefix)
pulumi.export("queue_url", bus.queue.url)
pulumi.export("dead_letter_queue_url", bus.dead_letter_queue.url)
pulumi.export("transform_function", transform.function.name)
pulumi.export("tuning_queue_url", tuning_requests.queue.url)
pulumi.export("tuning_dead_letter_queue_url", tuning_requests.dead_letter_queue.url)
pulumi.export("tune_function", tune.function.name)
pulumi.export("alarm_topic_arn", monitoring.topic.arn)
pulumi.export("training_role_arn", training.role.arn)
pulumi.export("endpoint_name", settings.endpoint_name)
pulumi.export("deploy_function", deployment.function.name)
pulumi.export("deploy_dead_letter_queue_url", deployment.dead_letter_queue.url)
pulumi.export("api_url", api.url)
pulumi.export("api_key", api.api_key)
pulumi.export("predict_function", api.function_name)
pulumi.export("api_authorization", settings.api.authorization)
# What a client needs to authenticate: the policy to attach to its IAM identity, or the user pool and
# app client to sign in with.
for output, value in api.access.client_outputs.items():
    pulumi.export(output, value)
pulumi.export("dashboard_url", dashboard.url)
pulumi.export("kms_key_arn", bus.key.arn)
# Where each part logs, for `aws logs tail` and Logs Insights (SageMaker's own groups are /aws/sagemaker/*).
pulumi.export(
    "log_groups",
    {
        "transform": transform.log_group.name,
        "tune": tune.log_group.name,
        "deploy": deployment.log_group.name,
        "predict": api.log_group.name,
        "api_access": api.access_log_group.name,
        "api_execution": api.execution_log_group.name,
    },
)
