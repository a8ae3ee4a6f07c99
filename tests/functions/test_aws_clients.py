"""The functions' AWS clients: one per service, and a clear failure when the runtime's SDK is too old."""

from __future__ import annotations

import pytest

from shared.aws import USER_AGENT_APP, OutdatedSdk, client, require_parameters


def test_a_runtime_sdk_too_old_for_conditional_writes_fails_at_cold_start_naming_it(aws: None) -> None:
    s3 = client("s3")
    require_parameters(s3, "PutObject", "IfNoneMatch")
    with pytest.raises(OutdatedSdk, match=r"botocore \S+ cannot send PutObject IfNoneExists"):
        require_parameters(s3, "PutObject", "IfNoneExists")


def test_clients_name_the_function_in_their_user_agent(aws: None) -> None:
    # CloudTrail shows the user agent: a request can be traced to the function that made it.
    assert client("s3").meta.config.user_agent_extra == f"{USER_AGENT_APP}/transform"
