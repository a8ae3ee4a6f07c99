"""Where the container sees what this package keeps in temporary directories, so messages read as in AWS:
SageMaker downloads channel <name> to /opt/ml/input/data/<name> and uploads /opt/ml/model; the container
links the channel's files into one directory (data_utils.py:586) and runs Python 3.10 from /miniconda3
(docker/3.0-5/base/Dockerfile.cpu:30,138).

Citations are into release-3.0.5 as the package docstring says.
"""

CONTAINER_CHANNEL_DIR = "/opt/ml/input/data"
CONTAINER_MODEL_DIR = "/opt/ml/model"
CONTAINER_INPUT_LINKS = "/tmp/sagemaker_xgboost_input_data"  # noqa: S108 - the container's own path
CONTAINER_SITE_PACKAGES = "/miniconda3/lib/python3.10/site-packages"
