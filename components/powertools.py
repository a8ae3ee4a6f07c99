"""ARN of the public AWS-managed Powertools for AWS Lambda (Python) v3 layer.

Source: Powertools docs, "Installation > Lambda Layer": arn:aws:lambda:{region}:017000801446:layer:
AWSLambdaPowertoolsPythonV3-{python_version}-{arch}:{version}, with python_version like python313;
China and GovCloud regions publish from other accounts.
"""

from __future__ import annotations

PUBLISHER_ACCOUNT = "017000801446"
PUBLISHER_ACCOUNT_BY_REGION = {
    "cn-north-1": "498634801083",
    "us-gov-east-1": "165087284144",
    "us-gov-west-1": "165093116878",
}


def powertools_layer_arn(
    *, partition: str, region: str, runtime: str, architecture: str, version: int
) -> str:
    account = PUBLISHER_ACCOUNT_BY_REGION.get(region, PUBLISHER_ACCOUNT)
    python_version = runtime.replace(".", "")
    return (
        f"arn:{partition}:lambda:{region}:{account}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{python_version}-{architecture}:{version}"
    )
