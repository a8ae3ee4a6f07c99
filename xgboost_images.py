"""Where the SageMaker built-in XGBoost images live: one ECR registry account per region.

The table is the sagemaker Python SDK's (sagemaker 3.27.0, `sagemaker/core/image_uri_config/xgboost.json`,
the same accounts as the developer guide's "Docker Registry Paths and Example Code"): every version the
stack allows (1.2-2 to 3.0-5) is published under the same account in a region, for training and inference
alike. It is copied here so that `pulumi up` needs no SDK for one lookup; tests/infra/test_xgboost_images.py
checks it against the SDK for every region and version. The ISO partitions are left out: the stack builds
ARNs for the aws, aws-cn and aws-us-gov partitions only (components/aws_context.py).
"""

from __future__ import annotations

REPOSITORY = "sagemaker-xgboost"

REGISTRY_ACCOUNTS = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "ca-west-1": "190319476487",
    "cn-north-1": "450853457545",
    "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}


class NoImageInRegion(ValueError):
    """The region has no registry of the built-in XGBoost images."""


def dns_suffix(region: str) -> str:
    """ECR's host domain: the China regions have their own."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def xgboost_image(region: str, version: str) -> str:
    """The image URI of built-in XGBoost `version` in `region`."""
    account = REGISTRY_ACCOUNTS.get(region)
    if account is None:
        raise NoImageInRegion(
            f"region {region!r} has no registry of SageMaker's built-in XGBoost images "
            f"(regions that do: {', '.join(sorted(REGISTRY_ACCOUNTS))})"
        )
    return f"{account}.dkr.ecr.{region}.{dns_suffix(region)}/{REPOSITORY}:{version}"
