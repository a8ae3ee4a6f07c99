"""The container's errors (sagemaker_algorithm_toolkit/exceptions.py), what this package does not
reproduce, and the training job's FailureReason.

Citations are into release-3.0.5 as the package docstring says.
"""

from __future__ import annotations

from typing import ClassVar

# DescribeTrainingJob FailureReason holds at most 1024 characters (botocore sagemaker service model,
# shape FailureReason).
FAILURE_REASON_LENGTH = 1024


class ToolkitError(Exception):
    """sagemaker_algorithm_toolkit/exceptions.py:16-71: the message, with the cause's class appended."""

    kind: ClassVar[str] = "BaseToolkitError"

    def __init__(self, message: str | None = None, caused_by: BaseException | None = None) -> None:
        if message:
            text = message
        elif caused_by is not None:
            text = str(caused_by)
        else:
            text = "unknown error occurred"
        if caused_by is not None:
            text += f" (caused by {type(caused_by).__name__})"
        super().__init__(text)
        self.message = text


class UserError(ToolkitError):
    kind = "UserError"


class AlgorithmError(ToolkitError):
    kind = "AlgorithmError"


class NotEmulated(NotImplementedError):
    """A container feature this package does not reproduce (it never fakes one)."""


class TrainingFailed(Exception):
    """The training job failed; `str()` is the FailureReason SageMaker shows for it.

    The container's errors (UserError, AlgorithmError) are not sagemaker-containers' ClientError, so its
    trainer reports every one as `"framework error: \\n%s\\n%s" % (traceback.format_exc(), str(e))`
    (sagemaker-containers _trainer.py:113-116) and SageMaker prefixes `AlgorithmError: `: a bad
    hyperparameter reads "AlgorithmError: framework error: \\nTraceback (most recent call last): ...",
    as in aws/amazon-sagemaker-examples#1740 and #4555. The traceback's frames are elided here ("  ...");
    its last line and the message after it are the container's. The whole is cut at 1024 characters.

    `exception_type` is the exception's qualified class name as the traceback prints it, `message` the
    container's message.
    """

    def __init__(self, exception_type: str, message: str) -> None:
        self.exception_type = exception_type
        self.message = message
        last_line = f"{exception_type}: {message}" if message else exception_type
        reason = (
            "AlgorithmError: framework error: \nTraceback (most recent call last):\n  ...\n"
            f"{last_line}\n\n{message}"
        )
        super().__init__(reason[:FAILURE_REASON_LENGTH])


def traceback_name(kind: type[BaseException]) -> str:
    """How a traceback's last line names the class: builtins bare, others with their module."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def toolkit_name(error: ToolkitError) -> str:
    return f"sagemaker_algorithm_toolkit.exceptions.{error.kind}"
