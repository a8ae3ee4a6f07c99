"""SageMaker training, which the program does not declare as resources: the tune function starts
each tuning job at run time from a request template the program renders into its environment. The
template is what every training job of the stack is made from, so it is checked where it is declared."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .framework import Guardrail, Props, is_set, resource_guardrail

FUNCTION = "aws:lambda/function:Function"


def _tuning_templates(props: Props) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each environment variable that holds a CreateHyperParameterTuningJob request (its
    TrainingJobDefinition is the training jobs' definition), parsed."""
    variables = (props.get("environment") or {}).get("variables") or {}
    for name, value in variables.items():
        try:
            parsed = json.loads(value) if isinstance(value, str) and value.startswith("{") else None
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict) and isinstance(parsed.get("TrainingJobDefinition"), dict):
            yield name, parsed["TrainingJobDefinition"]


def outputs_encrypted(_type: str, props: Props) -> Iterator[str]:
    for name, definition in _tuning_templates(props):
        if not is_set(definition.get("OutputDataConfig") or {}, "KmsKeyId"):
            yield f"{name}: training jobs need OutputDataConfig.KmsKeyId (model artifacts under a KMS key)"


def network_isolated(_type: str, props: Props) -> Iterator[str]:
    for name, definition in _tuning_templates(props):
        if definition.get("EnableNetworkIsolation") is not True:
            yield f"{name}: training jobs need EnableNetworkIsolation"


GUARDRAILS: tuple[Guardrail, ...] = (
    resource_guardrail(
        "sagemaker-training-output-kms",
        ("SageMaker API reference: OutputDataConfig.KmsKeyId",),
        "Training jobs the stack starts write model artifacts under a KMS key.",
        frozenset({FUNCTION}),
        outputs_encrypted,
    ),
    resource_guardrail(
        "sagemaker-training-network-isolation",
        ("SageMaker API reference: EnableNetworkIsolation",),
        "Training jobs the stack starts run with network isolation.",
        frozenset({FUNCTION}),
        network_isolated,
    ),
)
