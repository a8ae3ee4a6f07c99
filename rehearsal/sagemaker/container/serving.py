"""An endpoint's serving container (`HostedModel`), following algorithm_mode/serve.py `invocations`,
algorithm_mode/serve_utils.py and encoder.py: text/csv and text/libsvm bodies, the 204/415/400/406/500
answers with the container's messages, and JSON or CSV scores.

Citations are into release-3.0.5 as the package docstring says; a bare `serve.py` or `serve_utils.py` is
algorithm_mode's.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import tarfile
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import xgboost
from scipy import stats  # type: ignore[import-untyped]
from scipy.sparse import csr_matrix  # type: ignore[import-untyped]

from rehearsal.sagemaker.container.content_types import (
    CSV,
    LIBSVM,
    RECORDIO_PROTOBUF,
    get_content_type,
    parse_header,
)
from rehearsal.sagemaker.container.errors import NotEmulated
from rehearsal.sagemaker.container.paths import CONTAINER_MODEL_DIR, CONTAINER_SITE_PACKAGES

PKL_FORMAT = "pkl_format"
XGB_FORMAT = "xgb_format"
# serve.py:31.
SUPPORTED_ACCEPTS = (
    "application/json",
    "application/jsonlines",
    "application/x-recordio-protobuf",
    "text/csv",
)
# flask.Response's default mimetype, with the charset werkzeug 0.15 adds to text/* types.
HTML = "text/html; charset=utf-8"
# werkzeug 0.15 InternalServerError, the answer Flask 1.1 gives for an exception the view lets through.
INTERNAL_SERVER_ERROR = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n'
    b"<title>500 Internal Server Error</title>\n"
    b"<h1>Internal Server Error</h1>\n"
    b"<p>The server encountered an internal error and was unable to complete your request. Either the "
    b"server is overloaded or there is an error in the application.</p>\n"
)
# The objectives whose ensembles vote instead of averaging (serve_utils.py:252).
VOTING_OBJECTIVES = ("multi:softmax", "binary:hinge")


class ModelLoadFailed(Exception):
    """The serving container cannot load the model: its workers exit and /ping fails, so SageMaker fails
    the endpoint's creation (serve.py:93-107)."""


class _BoosterUnpickler(pickle.Unpickler):
    """The container unpickles model files first (serve_utils.py:177). Unpickling runs whatever code the
    file names, so only a pickled Booster's own classes are let through; any other file fails to unpickle
    with pickle's own message, as there."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {("xgboost.core", "Booster"), ("builtins", "bytearray")}
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is forbidden")
        return super().find_class(module, name)


def _load_booster(path: Path) -> tuple[Any, str]:
    """get_loaded_booster's loading of one file (serve_utils.py:176-190)."""
    try:
        with open(path, "rb") as handle:
            booster = _BoosterUnpickler(handle).load()
        model_format = PKL_FORMAT
    except Exception as pickle_error:
        try:
            booster = xgboost.Booster()
            booster.load_model(str(path))
            model_format = XGB_FORMAT
        except Exception as xgb_error:
            raise ModelLoadFailed(
                f"Model {CONTAINER_MODEL_DIR}/{path.name} cannot be loaded:"
                f"\nPickle load error={pickle_error}"
                f"\nXGB load model error={xgb_error}"
            ) from xgb_error
    booster.set_param("nthread", 1)
    return booster, model_format


def _csv_to_dmatrix(text: str) -> Any:
    """csv_to_dmatrix (encoder.py:39-56): the first line's delimiter (a letter or digit means comma), one
    row per line, an empty field missing."""
    sniffed = csv.Sniffer().sniff(text.split("\n")[0][:512]).delimiter
    delimiter = "," if sniffed.isalnum() else sniffed
    rows = [["nan" if x == "" else x for x in line.split(delimiter)] for line in text.split("\n")]
    return xgboost.DMatrix(np.array(rows).astype(float))


def _libsvm_to_matrix(text: str) -> Any:
    """_get_sparse_matrix_from_libsvm (serve_utils.py:94-115)."""
    rows, cols, data = [], [], []
    for row_index, line in enumerate(text.split("\n")):
        for item in line.split(" "):
            if ":" in item:
                rows.append(row_index)
                cols.append(item.split(":")[0])
                data.append(item.split(":")[1])
    row = np.array(rows)
    col = np.array(cols).astype(int)
    values = np.array(data).astype(float)
    if not (len(row) == len(col) and len(col) == len(values)):
        raise RuntimeError("Dimension checking failed when transforming sparse matrix.")
    return csr_matrix((values, (row, col)))


def _parse_content(body: bytes, content_type: str | None) -> tuple[Any, str]:
    """parse_content_data (serve_utils.py:118-152)."""
    kind = get_content_type(content_type)
    if kind == CSV:
        try:
            return _csv_to_dmatrix(body.strip().decode("utf-8")), kind
        except Exception as error:
            raise RuntimeError(
                "Loading csv data failed with Exception, please ensure data is in csv format:"
                f"\n {type(error)}\n {error}"
            ) from error
    if kind == LIBSVM:
        try:
            return xgboost.DMatrix(_libsvm_to_matrix(body.strip().decode("utf-8"))), kind
        except Exception as error:
            raise RuntimeError(
                "Loading libsvm data failed with Exception, please ensure data is in libsvm format:"
                f"\n {type(error)}\n {error}"
            ) from error
    if kind == RECORDIO_PROTOBUF:
        raise NotEmulated("recordio-protobuf request bodies are not emulated")
    raise RuntimeError(f"Content-type {content_type} is not supported.")


class HostedModel:
    """The serving container of an endpoint: the model SageMaker extracted from ModelDataUrl into
    /opt/ml/model, answering POST /invocations.

    `environment` is the model container's Environment: SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT (the answer's
    type when the request names none or */*, default text/csv), SAGEMAKER_INFERENCE_ENSEMBLE (default
    "true": every model file is loaded and their predictions combined), SAGEMAKER_BATCH (one score per
    line, as batch transform sets). Selectable inference output (SAGEMAKER_INFERENCE_OUTPUT) is not
    emulated.
    """

    def __init__(self, boosters: list[Any], formats: list[str], environment: Mapping[str, str]) -> None:
        self._boosters = boosters
        self._formats = formats
        self._environment = dict(environment)
        # get_config_json (serve.py:80-90): the objective of the first model.
        config = json.loads(boosters[0].save_config())
        self.objective: str = config["learner"]["objective"]["name"]
        self.num_features: int = boosters[0].num_features()
        # The container loads the model per worker process because prediction is not thread safe
        # (serve.py:98-99); here one model answers every thread, one prediction at a time.
        self._lock = threading.Lock()

    @property
    def boosters(self) -> tuple[Any, ...]:
        """The loaded model files' boosters (several for an ensemble)."""
        return tuple(self._boosters)

    @classmethod
    def from_archive(cls, archive: bytes, *, environment: Mapping[str, str] | None = None) -> HostedModel:
        """The model of a model.tar.gz, loaded as the container does at start-up; raises ModelLoadFailed."""
        environment = dict(environment or {})
        if "SAGEMAKER_INFERENCE_OUTPUT" in environment:
            raise NotEmulated("selectable inference output (SAGEMAKER_INFERENCE_OUTPUT) is not emulated")
        ensemble = environment.get("SAGEMAKER_INFERENCE_ENSEMBLE", "true") == "true"
        with tempfile.TemporaryDirectory(prefix="sagemaker-model-") as root:
            model_dir = Path(root)
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
                tar.extractall(model_dir, filter="data")
            # _get_full_model_paths (serve_utils.py:155-165): files at the top, dotfiles ignored.
            paths = [
                model_dir / name
                for name in os.listdir(model_dir)
                if (model_dir / name).is_file() and not name.startswith(".")
            ]
            if not ensemble:
                paths = paths[:1]
            if not paths:
                # models[0] of an empty list (serve_utils.py:194).
                raise ModelLoadFailed("list index out of range")
            loaded = [_load_booster(path) for path in paths]
        return cls([b for b, _ in loaded], [f for _, f in loaded], environment)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, str, bytes]:
        """The container's answer to POST /invocations (serve.py:207-249): HTTP status, Content-Type, body.
        `content_type` and `accept` are the request's headers (None when absent)."""
        if len(body) == 0:
            return 204, HTML, b""
        try:
            matrix, kind = _parse_content(body, content_type)
        except NotImplementedError:
            raise
        except Exception as error:
            return 415, HTML, self._container_text(str(error))
        try:
            with self._lock:
                predictions = self._predict(matrix, kind)
        except Exception as error:
            return 400, HTML, self._container_text(f"Unable to evaluate payload provided: {error}")
        try:
            answer_type = self._parse_accept(accept)
        except ValueError as error:
            return 406, HTML, str(error).encode()
        try:
            return self._encode(predictions, answer_type)
        except Exception:
            # The view lets the exception through and Flask answers 500 (e.g. encoding a lone vote of a
            # voting ensemble, or encoders.encode's UnsupportedFormatError for jsonlines/recordio).
            return 500, HTML, INTERNAL_SERVER_ERROR

    def _predict(self, matrix: Any, content_type: str) -> Any:
        """serve_utils.predict (serve_utils.py:197-259)."""
        if self._formats[0] == PKL_FORMAT:
            x = self._boosters[0].num_features()
            y = len(matrix.feature_names) if matrix.feature_names is not None else matrix.num_col()
            if content_type == LIBSVM and y > x + 1:
                raise ValueError(
                    f"Feature size of libsvm inference data {y} is larger than feature size of trained "
                    f"model {x}."
                )
            if content_type == CSV and not (x == y or x == y + 1):
                raise ValueError(
                    f"Feature size of {content_type} inference data {y} is not consistent with feature size "
                    f"of trained model {x}."
                )

        def predict(booster: Any) -> Any:
            # _predict_with_compat: xgboost 3 boosters have no best_ntree_limit, so every tree predicts.
            limit = int(getattr(booster, "best_ntree_limit", 0) or 0)
            if limit > 0:
                return booster.predict(matrix, iteration_range=(0, limit), validate_features=False)
            return booster.predict(matrix, validate_features=False)

        if len(self._boosters) == 1:
            return predict(self._boosters[0])
        ensemble = [predict(booster) for booster in self._boosters]
        if self.objective in VOTING_OBJECTIVES:
            return stats.mode(ensemble).mode[0]
        return np.mean(ensemble, axis=0)

    def _parse_accept(self, accept: str | None) -> str:
        """_parse_accept (serve.py:163-179)."""
        kind, _ = parse_header(accept or "")
        if not kind or kind == "*/*":
            return self._environment.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv")
        if kind.lower() not in SUPPORTED_ACCEPTS:
            raise ValueError(
                f"Accept type {kind} is not supported. Please use supported accept types: "
                f"{list(SUPPORTED_ACCEPTS)}."
            )
        return kind.lower()

    def _encode(self, predictions: Any, accept: str) -> tuple[int, str, bytes]:
        """serve.py:240-249 and sagemaker-containers' encoders.encode (_encoders.py:216-234)."""
        scores = predictions.tolist()
        content_type = accept + "; charset=utf-8" if accept.startswith("text/") else accept
        if "SAGEMAKER_BATCH" in self._environment:
            return 200, content_type, ("\n".join(map(str, scores)) + "\n").encode()
        if accept == "application/json":
            # encode_predictions_as_json (serve_utils.py:533-545).
            answer = json.dumps({"predictions": [{"score": score} for score in scores]})
            return 200, content_type, answer.encode()
        if accept == "text/csv":
            return 200, content_type, _array_to_csv(scores).encode()
        # encoders.encode knows only JSON, CSV and NPY (_encoders.py:186-190).
        raise ValueError(f"Content type {accept} is not supported by this framework.")

    @staticmethod
    def _container_text(text: str) -> bytes:
        return text.replace(str(Path(xgboost.__file__).parent.parent), CONTAINER_SITE_PACKAGES).encode()


def _array_to_csv(scores: Any) -> str:
    """array_to_csv (sagemaker-containers _encoders.py:129-152): one row per record, class scores
    comma-separated."""
    array = np.array(scores)
    if len(array.shape) == 1:
        array = np.reshape(array, (array.shape[0], 1))
    stream = io.StringIO()
    csv.writer(
        stream, lineterminator="\n", delimiter=",", quotechar='"', doublequote=True, strict=True
    ).writerows(array)
    return stream.getvalue()
