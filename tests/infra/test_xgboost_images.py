"""The stack's copy of the built-in XGBoost registry against the sagemaker SDK's (a test-only dependency):
same URI for every region and allowed version, no region of a supported partition missing."""

from __future__ import annotations

import pytest
from sagemaker.core import image_uris

from settings import XGBOOST_VERSIONS, InvalidStackConfig, load_settings
from tests.support.stacks import config_for
from xgboost_images import REGISTRY_ACCOUNTS, NoImageInRegion, xgboost_image


def sdk_regions() -> set[str]:
    return set(image_uris.config_for_framework("xgboost")["training"]["versions"]["3.0-5"]["registries"])


@pytest.mark.parametrize("version", XGBOOST_VERSIONS)
@pytest.mark.parametrize("region", sorted(REGISTRY_ACCOUNTS))
def test_image_is_the_sdks_for_every_region_and_version(region: str, version: str) -> None:
    assert xgboost_image(region, version) == image_uris.retrieve("xgboost", region=region, version=version)


def test_every_region_of_the_supported_partitions_is_in_the_table() -> None:
    # The ISO partitions are the only ones left out (the stack builds no ARNs for them).
    missing = sdk_regions() - set(REGISTRY_ACCOUNTS)
    assert missing and all("-iso" in region for region in missing)


def test_a_region_without_an_image_is_refused_by_the_stack_config() -> None:
    with pytest.raises(NoImageInRegion, match="mars-north-1"):
        xgboost_image("mars-north-1", "3.0-5")
    config = config_for("dev", {"aws:region": "us-isob-east-1"})
    with pytest.raises(InvalidStackConfig, match=r"aws:region = 'us-isob-east-1': SageMaker publishes no"):
        load_settings(config, stack="dev")
