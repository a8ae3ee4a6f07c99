"""Where the champion's score is kept: the tags of the endpoint config serving (`endpoint-tags`), or also
an SSM parameter (`ssm-parameter`), per the stack's `championStore`.

The tags are written with every endpoint config, so the config the endpoint runs names its model's score
whatever happened since: an update, a rollback. The SSM parameter is a copy for readers outside the
pipeline. The deploy function writes it whenever the endpoint is InService with nothing pending, with the
name of the config it describes; a copy that names another config than the one serving (an update has
finished and housekeeping has not run yet) is not trusted: the challenger waits like one that met a
busy endpoint.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Protocol

from deploy.contest import Score
from deploy.endpoint_state import EndpointBusy, EndpointState
from deploy.serving import champion_score


class ChampionStore(Protocol):
    def champion(self, endpoint: EndpointState) -> Score | None: ...

    def record(self, config_name: str, config_arn: str) -> None: ...


class ConfigTags:
    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def champion(self, endpoint: EndpointState) -> Score | None:
        return self.score_of(endpoint.config_arn)

    def record(self, config_name: str, config_arn: str) -> None:
        """Nothing to do: the tags are written with the config."""

    def score_of(self, config_arn: str) -> Score | None:
        tags = self._sagemaker.list_tags(ResourceArn=config_arn, MaxResults=100)["Tags"]
        return champion_score({tag["Key"]: tag["Value"] for tag in tags})


class SsmParameter:
    def __init__(self, sagemaker: Any, ssm: Any, name: str) -> None:
        self._tags = ConfigTags(sagemaker)
        self._ssm = ssm
        self._name = name

    def champion(self, endpoint: EndpointState) -> Score | None:
        record = json.loads(self._ssm.get_parameter(Name=self._name)["Parameter"]["Value"])
        if record.get("config") != endpoint.config_name:
            raise EndpointBusy(
                f"the champion record in {self._name} describes {record.get('config') or 'nothing'}, the "
                f"endpoint serves {endpoint.config_name}: the challenger is judged once it is up to date"
            )
        score = record.get("score")
        return Score(**score) if score else None

    def record(self, config_name: str, config_arn: str) -> None:
        score = self._tags.score_of(config_arn)
        value = {"config": config_name, "score": asdict(score) if score else None}
        self._ssm.put_parameter(Name=self._name, Value=json.dumps(value), Overwrite=True)
