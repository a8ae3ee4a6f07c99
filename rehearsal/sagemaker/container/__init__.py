"""What SageMaker's built-in XGBoost container does inside a training job and behind an endpoint, run in
this process with the installed xgboost.

The target is the image `sagemaker-xgboost:3.0-5` (aws/sagemaker-xgboost-container, tag release-3.0.5,
xgboost 3.0.5 per docker/3.0-5/base/Dockerfile.cpu:33, scikit-learn 1.5.2 per requirements.txt). Citations
`file:line` in this package are into that tag's `src/sagemaker_xgboost_container/` unless they name another
root; `sagemaker-containers` is amazon-archives/sagemaker-containers at v2.8.6.post2 (requirements.txt), the
framework that runs the container's entry points.

- `training`: a training job (`train`, `TrainingOutcome`, `MODEL_NAME`), with its `hyperparameters`,
  `channels`, `metrics` and `callbacks`;
- `serving`: an endpoint's container (`HostedModel`, `ModelLoadFailed`);
- `content_types`, `paths` and `errors` (`TrainingFailed`, `NotEmulated`): what both share.
"""
