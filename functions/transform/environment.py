"""The transform function's configuration, read once per container from its environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from shared.s3_events import UploadFilter

# Names of the environment variables the Pulumi program sets on the function.
DATA_BUCKET = "DATA_BUCKET"
RAW_PREFIX = "RAW_PREFIX"
RAW_SUFFIX = "RAW_SUFFIX"


class MissingEnvironment(RuntimeError):
    """The function was deployed without a variable it needs; no message can be processed."""


@dataclass(frozen=True)
class TransformEnvironment:
    uploads: UploadFilter


def load_environment(env: Mapping[str, str] = os.environ) -> TransformEnvironment:
    missing = [name for name in (DATA_BUCKET, RAW_PREFIX, RAW_SUFFIX) if not env.get(name)]
    if missing:
        raise MissingEnvironment(f"transform function environment lacks {', '.join(missing)}")
    return TransformEnvironment(
        uploads=UploadFilter(bucket=env[DATA_BUCKET], prefix=env[RAW_PREFIX], suffix=env[RAW_SUFFIX])
    )
