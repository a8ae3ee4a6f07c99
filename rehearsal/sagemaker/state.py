"""What every part of the local SageMaker shares: the account it acts in, one lock over all its state, its
clock, its event delivery, the tags of its resources, and the rules of names, ARNs and List paging."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rehearsal.sagemaker.api import ServiceError
from rehearsal.sagemaker.events import EventDelivery, envelope
from rehearsal.sagemaker.schedule import Scheduler


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


@dataclass
class Context:
    region: str
    account_id: str
    scheduler: Scheduler
    events: EventDelivery
    # A boto3 S3 client acting as the given role: SageMaker reads and writes S3 as the role it was passed.
    s3_for_role: Callable[[str], Any]
    # Largest List page, below what the caller asks for (AWS may return fewer items than MaxResults).
    page_cap: int | None = None
    # Reentrant: an operation may call another's helpers while holding it.
    lock: threading.RLock = field(default_factory=threading.RLock)
    # Resource ARN -> its tags, in the order they were added.
    tags: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.scheduler.now()

    def arn(self, resource_type: str, name: str) -> str:
        """SageMaker ARNs carry names lowercased (names are case-insensitive)."""
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:{resource_type}/{name.lower()}"

    def emit(self, detail_type: str, resource_arn: str, detail: Mapping[str, Any]) -> None:
        """Queue a state-change event; call with the lock held, so events leave in the order of changes."""
        self.events.send(
            envelope(
                detail_type,
                resource_arn,
                detail,
                account=self.account_id,
                region=self.region,
                time=self.now(),
            )
        )

    def tag(self, arn: str, tags: list[dict[str, str]]) -> None:
        current = {t["Key"]: t for t in self.tags.get(arn, [])}
        for new in tags:
            current[new["Key"]] = {"Key": new["Key"], "Value": new["Value"]}
        self.tags[arn] = list(current.values())

    def page(
        self,
        items: list[dict[str, Any]],
        key: str,
        request: Mapping[str, Any],
        *,
        name_member: str,
        status_member: str | None = None,
        sort_keys: Mapping[str, str],
        default_sort: str,
        default_order: str,
        default_size: int = 10,
    ) -> dict[str, Any]:
        """One page of a List answer: the items filtered by the request's common filters (NameContains on
        `name_member`, StatusEquals on `status_member`, the time bounds), sorted, then cut at NextToken.
        `sort_keys` maps SortBy values to the item member they sort on."""
        selected = [item for item in items if _passes(item, request, name_member, status_member)]
        member = sort_keys[request.get("SortBy", default_sort)]
        selected.sort(
            key=lambda item: (item.get(member) is None, item.get(member)),
            reverse=request.get("SortOrder", default_order) == "Descending",
        )
        size = int(request.get("MaxResults", default_size))
        if self.page_cap is not None:
            size = min(size, self.page_cap)
        token = request.get("NextToken")
        try:
            start = int(token) if token else 0
        except ValueError:
            raise validation(f"Invalid pagination token {token}.") from None
        answer: dict[str, Any] = {key: selected[start : start + size]}
        if start + size < len(selected):
            answer["NextToken"] = str(start + size)
        return answer


# The List operations' common filters (SageMaker API reference, ListModels, ListEndpointConfigs, ...):
# request member -> (item member, how the item's value must compare).
_FILTERS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "CreationTimeBefore": ("CreationTime", lambda value, bound: value < bound),
    "CreationTimeAfter": ("CreationTime", lambda value, bound: value > bound),
    "LastModifiedTimeBefore": ("LastModifiedTime", lambda value, bound: value < bound),
    "LastModifiedTimeAfter": ("LastModifiedTime", lambda value, bound: value > bound),
}


def _passes(
    item: Mapping[str, Any], request: Mapping[str, Any], name_member: str, status_member: str | None
) -> bool:
    # Names are case-insensitive (CreateHyperParameterTuningJob: "The name is not case sensitive").
    contains = request.get("NameContains")
    if contains is not None and contains.lower() not in str(item[name_member]).lower():
        return False
    for filter_name, (member, holds) in _FILTERS.items():
        bound = request.get(filter_name)
        if bound is not None and (item.get(member) is None or not holds(item[member], bound)):
            return False
    status = request.get("StatusEquals")
    return status is None or status_member is None or item.get(status_member) == status
