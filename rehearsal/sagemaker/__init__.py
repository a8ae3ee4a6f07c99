"""A local SageMaker: the control plane, training, tuning and hosting of the built-in XGBoost container."""
