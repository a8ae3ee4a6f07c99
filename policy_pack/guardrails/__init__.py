"""The guardrails of serverless-ml-pipeline: the controls the program is built to pass, one policy each."""

from __future__ import annotations

from . import api_gateway, functions, iam, logs, messaging, s3, sagemaker
from .framework import Guardrail

GUARDRAILS: tuple[Guardrail, ...] = (
    *s3.GUARDRAILS,
    *messaging.GUARDRAILS,
    *functions.GUARDRAILS,
    *iam.GUARDRAILS,
    *api_gateway.GUARDRAILS,
    *sagemaker.GUARDRAILS,
    *logs.GUARDRAILS,
)

__all__ = ["GUARDRAILS", "Guardrail"]
