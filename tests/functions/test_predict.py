"""The predict function behind API Gateway's REST proxy: records in, predictions out, through the real
boto3 InvokeEndpoint call to the rehearsal's local SageMaker over HTTP, whose endpoint serves a model the
built-in container's emulation trained.

Each model here is trained on rows whose label is a plain function of the features, so a test knows which
class a record falls in; the exact scores a test expects come from the same Booster, read from the model
artifact the endpoint serves. The environment is the one the program gives the function in the dev
stack; the serving record and the schema are the ones the deploy function and the transform write, in
moto's S3.
"""

from __future__ import annotations

import base64
import copy
import csv
import dataclasses
import importlib
import io
import json
import math
import random
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import numpy as np
import pytest
import xgboost
from botocore.exceptions import ReadTimeoutError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shared.aws
from rehearsal.sagemaker.api import ServiceError
from rehearsal.sagemaker.container.training import MODEL_NAME, train
from rehearsal.sagemaker.hosting import CREATE_SECONDS
from rehearsal.sagemaker.server import SageMakerServer
from shared.dataset_schema import DatasetSchema, Feature, FeatureKind, ProblemType, Target
from tests.functions.conftest import ACCOUNT, DATA_BUCKET, PROGRAM, REGION, TARGET, Pipeline, churn_csv
from tests.support.lambda_events import LambdaContext

EVENTS = Path(__file__).parent / "events"
PREDICT_ENVIRONMENT: dict[str, str] = PROGRAM.named("predict-function").inputs["environment"]["variables"]
ENDPOINT = PREDICT_ENVIRONMENT["ENDPOINT_NAME"]
SERVING_RECORD = PREDICT_ENVIRONMENT["SERVING_RECORD_KEY"]
SCHEMA_KEY = "processed/churn/20261101T120000Z-0123456789ab/schema.json"
MODEL = "dev-6147-0001-003-1a2b3c4d"

CHURN = DatasetSchema(
    columns=("customer_id", "age", "plan", "monthly_spend", "churned"),
    target=Target("churned", ProblemType.BINARY, ("no", "yes")),
    features=(
        Feature("customer_id", FeatureKind.IGNORED, reason="an identifier"),
        Feature("age", FeatureKind.NUMERIC),
        Feature("plan", FeatureKind.CATEGORICAL, categories=("basic", "pro")),
        Feature("monthly_spend", FeatureKind.NUMERIC, missing=("unknown",)),
    ),
)


# ---------------------------------------------------------------------------------------------- models


@dataclass(frozen=True)
class TrainedModel:
    """A model.tar.gz as a training job of the built-in container leaves it, and its Booster."""

    archive: bytes

    @property
    def booster(self) -> xgboost.Booster:
        with tarfile.open(fileobj=io.BytesIO(self.archive), mode="r:gz") as tar:
            member = tar.extractfile(MODEL_NAME)
            assert member is not None
            booster = xgboost.Booster()
            booster.load_model(bytearray(member.read()))
        return booster

    def scores(self, lines: list[str]) -> list[Any]:
        """The Booster's predictions for the CSV lines the endpoint received (an empty field missing)."""
        rows = [[math.nan if value == "" else float(value) for value in line.split(",")] for line in lines]
        return list(self.booster.predict(xgboost.DMatrix(np.array(rows, dtype=float))).tolist())


def trained(directory: Path, rows: list[str], **hyperparameters: str) -> TrainedModel:
    """Train the container's way on `rows` (label first, no header: the transform's part files)."""
    directory.mkdir()
    (directory / "part-00000.csv").write_text("\n".join(rows) + "\n")
    values = {"num_round": "20", "max_depth": "3", "eta": "0.5", **hyperparameters}
    return TrainedModel(train(values, {"train": directory}, content_type="text/csv").model_archive)


def _draws(seed: int) -> random.Random:
    return random.Random(seed)


@pytest.fixture(scope="module")
def binary_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """CHURN's columns (age, plan code, monthly spend, the width marker): churned ("yes", 1) when age > 0."""
    draws = _draws(1)
    rows = []
    for _ in range(300):
        age = draws.randint(-100, 100)
        rows.append(f"{int(age > 0)},{age},{draws.randint(0, 2)},{draws.uniform(0, 100):.2f},1")
    return trained(tmp_path_factory.mktemp("binary") / "train", rows, objective="binary:logistic")


@pytest.fixture(scope="module")
def multiclass_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """x and the width marker: class a below -1, b up to 0.5, c above."""
    draws = _draws(2)
    rows = []
    for _ in range(300):
        x = draws.uniform(-3, 3)
        rows.append(f"{0 if x < -1 else 1 if x < 0.5 else 2},{x:.3f},1")
    directory = tmp_path_factory.mktemp("multiclass") / "train"
    return trained(directory, rows, objective="multi:softprob", num_class="3")


@pytest.fixture(scope="module")
def regression_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """x, y and the width marker: 2x + y."""
    draws = _draws(3)
    rows = []
    for _ in range(300):
        x, y = draws.uniform(-5, 5), draws.uniform(-5, 5)
        rows.append(f"{2 * x + y:.4f},{x:.3f},{y:.3f},1")
    directory = tmp_path_factory.mktemp("regression") / "train"
    return trained(directory, rows, objective="reg:squarederror")


@pytest.fixture(scope="module")
def one_feature_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """x and the width marker: 3x + 1, and -5 where x is missing."""
    draws = _draws(4)
    rows = []
    for _ in range(300):
        x = draws.uniform(-5, 5)
        rows.append(f"{3 * x + 1:.4f},{x:.3f},1" if draws.random() > 0.2 else "-5,,1")
    directory = tmp_path_factory.mktemp("one-feature") / "train"
    return trained(directory, rows, objective="reg:squarederror")


# ------------------------------------------------------------------------------------------ the API


def proxy_event(
    method: str, resource: str, body: str | None = None, *, base64_body: bool = False
) -> dict[str, Any]:
    """The published REST proxy sample with this request's method, resource and body."""
    event = json.loads((EVENTS / "apigateway-rest-proxy.json").read_text())
    event.update(resource=resource, path=resource, httpMethod=method, body=body, isBase64Encoded=base64_body)
    event["requestContext"].update(resourcePath=resource, httpMethod=method, requestId="c6af9ac6-7b61-11e6")
    return dict(event)


@dataclass
class Api:
    handler: ModuleType
    local: SageMakerServer
    model: TrainedModel
    s3: Any

    def call(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = self.handler.lambda_handler(event, LambdaContext())
        assert response["headers"]["Content-Type"] == "application/json"
        assert isinstance(response["body"], str) and response["isBase64Encoded"] is False
        return response["statusCode"], json.loads(response["body"])

    def predict(self, document: Any) -> tuple[int, dict[str, Any]]:
        return self.call(proxy_event("POST", "/predict", json.dumps(document)))

    def health(self) -> tuple[int, dict[str, Any]]:
        return self.call(proxy_event("GET", "/health"))

    def serve(self, schema: DatasetSchema | None, model: str = MODEL, key: str = SCHEMA_KEY) -> None:
        """What the deploy function and the transform leave: the schema, and the record naming it."""
        if schema is not None:
            self.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=schema.to_json())
        record = {
            "endpoint": ENDPOINT,
            "model": model,
            "schema": f"s3://{DATA_BUCKET}/{key}",
            "recorded_at": "now",
        }
        self.s3.put_object(Bucket=DATA_BUCKET, Key=SERVING_RECORD, Body=json.dumps(record).encode())

    def invocations(self) -> list[dict[str, Any]]:
        """The InvokeEndpoint requests SageMaker received, in order."""
        return [params for operation, params in self.local.service.calls if operation == "InvokeEndpoint"]

    def sent_lines(self) -> list[str]:
        """The CSV lines the endpoint received, over all requests."""
        return [line for request in self.invocations() for line in request["Body"].decode().splitlines()]


def host(local: SageMakerServer, endpoint: str, model: TrainedModel) -> None:
    """What the deploy function leaves for `model`: its artifact in S3, the model, a serverless endpoint
    config and the endpoint, in service once SageMaker has brought it up."""
    artifact = f"models/{MODEL}/output/model.tar.gz"
    boto3.client("s3", region_name=REGION).put_object(Bucket=DATA_BUCKET, Key=artifact, Body=model.archive)
    sagemaker = boto3.client("sagemaker", region_name=REGION, endpoint_url=local.url)
    sagemaker.create_model(
        ModelName=MODEL,
        PrimaryContainer={
            "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5",
            "ModelDataUrl": f"s3://{DATA_BUCKET}/{artifact}",
        },
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/model-role",
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=MODEL,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": MODEL,
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=MODEL)
    local.service.sleep(CREATE_SECONDS)
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"


Start = Callable[..., Api]


@pytest.fixture
def start_api(local_sagemaker: SageMakerServer, monkeypatch: pytest.MonkeyPatch) -> Start:
    """Host a model on an endpoint and start the predict function against it; call it after any transform
    a test runs, so the function's clients are its own. `failure`: every invocation answers that service
    error."""

    def start(model: TrainedModel, *, endpoint: str = ENDPOINT, failure: ServiceError | None = None) -> Api:
        host(local_sagemaker, endpoint, model)
        if failure is not None:
            local_sagemaker.service.fail_invocations(endpoint, failure)
        for name, value in PREDICT_ENVIRONMENT.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", local_sagemaker.url)
        shared.aws.client.cache_clear()
        import predict.handler

        return Api(importlib.reload(predict.handler), local_sagemaker, model, boto3.client("s3"))

    return start


@pytest.fixture
def api(start_api: Start, binary_model: TrainedModel) -> Api:
    served = start_api(binary_model)
    served.serve(CHURN)
    return served


RECORD = {"customer_id": "c-1", "age": 42, "plan": "pro", "monthly_spend": "19.90"}


# ------------------------------------------------------------------------------------------ predictions


def test_records_become_labels_and_probabilities_of_the_served_model(api: Api) -> None:
    status, answer = api.predict({"records": [RECORD, {**RECORD, "age": -100, "plan": "basic"}]})

    assert status == 200
    assert answer["model"] == "dev-6147-0001-003-1a2b3c4d"
    first, second = answer["predictions"]
    assert first["label"] == "yes" and second["label"] == "no"
    assert set(first["probabilities"]) == {"no", "yes"}
    assert first["probabilities"]["yes"] == pytest.approx(1 - first["probabilities"]["no"])
    (request,) = api.invocations()
    assert (request["ContentType"], request["Accept"]) == ("text/csv", "application/json")
    assert api.sent_lines() == ["42,2,19.90,1", "-100,1,19.90,1"], "the width marker ends each line"
    scores = api.model.scores(api.sent_lines())
    assert [p["probabilities"]["yes"] for p in (first, second)] == scores, "the served model's scores"


def test_instances_in_feature_order_are_encoded_like_records(api: Api) -> None:
    status, answer = api.predict({"instances": [[42, "pro", "19.90"]]})
    assert status == 200 and len(answer["predictions"]) == 1
    assert api.sent_lines() == ["42,2,19.90,1"]


def test_missing_values_unknown_categories_and_the_target_are_handled_as_in_training(api: Api) -> None:
    record = {"age": None, "plan": "enterprise", "monthly_spend": "unknown", "churned": "yes"}
    status, _ = api.predict({"records": [record]})
    assert status == 200
    # Missing: an empty field; unknown category: code 0 (the transform's); the target is left out.
    assert api.sent_lines() == [",0,,1"]


def test_multiclass_answers_the_most_probable_class(start_api: Start, multiclass_model: TrainedModel) -> None:
    schema = DatasetSchema(
        columns=("x", "kind"),
        target=Target("kind", ProblemType.MULTICLASS, ("a", "b", "c")),
        features=(Feature("x", FeatureKind.NUMERIC),),
    )
    served = start_api(multiclass_model)
    served.serve(schema)
    status, answer = served.predict({"records": [{"x": 1}]})
    assert status == 200
    (prediction,) = answer["predictions"]
    assert prediction["label"] == "c" and list(prediction["probabilities"]) == ["a", "b", "c"]
    assert sum(prediction["probabilities"].values()) == pytest.approx(1)
    assert list(prediction["probabilities"].values()) == served.model.scores(served.sent_lines())[0]


def test_regression_answers_values(start_api: Start, regression_model: TrainedModel) -> None:
    schema = DatasetSchema(
        columns=("x", "y", "price"),
        target=Target("price", ProblemType.REGRESSION),
        features=(Feature("x", FeatureKind.NUMERIC), Feature("y", FeatureKind.NUMERIC)),
    )
    served = start_api(regression_model)
    served.serve(schema)
    status, answer = served.predict({"records": [{"x": 1.5, "y": "2"}]})
    assert served.sent_lines() == ["1.5,2,1"]
    assert (status, answer["predictions"]) == (200, [{"value": served.model.scores(["1.5,2,1"])[0]}])


@pytest.mark.parametrize("empty_at", [0, -1])
def test_a_record_with_every_field_missing_is_still_a_record_for_the_container(
    start_api: Start, one_feature_model: TrainedModel, empty_at: int
) -> None:
    # The container strips the body before splitting it into lines (release-3.0.5:
    # algorithm_mode/serve_utils.py:118-130): a one-feature line that is empty would vanish, and the
    # endpoint would score one record of two. The width marker keeps every line non-empty.
    schema = DatasetSchema(
        columns=("x", "y"),
        target=Target("y", ProblemType.REGRESSION),
        features=(Feature("x", FeatureKind.NUMERIC),),
    )
    served = start_api(one_feature_model)
    served.serve(schema)
    records: list[dict[str, Any]] = [{"x": 2.5}, {"x": 2.5}]
    records[empty_at] = {"x": None}
    status, answer = served.predict({"records": records})
    assert status == 200, answer
    values = [prediction["value"] for prediction in answer["predictions"]]
    missing, present = served.model.scores([",1", "2.5,1"])
    assert missing != present, "the model tells the two records apart"
    assert values[empty_at] == missing and values[empty_at + 1 if empty_at == 0 else 0] == present


def test_base64_body_is_read(api: Api) -> None:
    body = base64.b64encode(json.dumps({"records": [RECORD]}).encode()).decode()
    status, _ = api.call(proxy_event("POST", "/predict", body, base64_body=True))
    assert status == 200


def test_health_names_the_deployed_model(api: Api) -> None:
    assert api.health() == (200, {"deployed": True, "model": MODEL})


# --------------------------------------------------------------------------------------- no model yet


def test_without_a_deployed_model_predict_is_503_and_health_says_so(
    start_api: Start, binary_model: TrainedModel
) -> None:
    served = start_api(binary_model)
    status, answer = served.predict({"records": [RECORD]})
    assert status == 503 and "no model is deployed" in answer["message"]
    assert answer["requestId"] == "c6af9ac6-7b61-11e6"
    assert served.health() == (200, {"deployed": False, "model": None})
    assert served.invocations() == []


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (None, 400, "no body"),
        ("{not json", 400, "not JSON"),
        ("[1, 2]", 400, "a JSON array, not an object"),
        ('{"records": NaN}', 400, "NaN"),
        ("{}", 400, 'exactly one of "records" and "instances"'),
        ('{"records": [], "instances": []}', 400, "exactly one"),
        ('{"records": [], "extra": 1}', 400, "'extra'"),
        ('{"records": []}', 400, "non-empty array"),
        ('{"records": [1]}', 400, "records[0] is a JSON number"),
        ('{"records": [{"age": 1, "plan": "pro"}]}', 400, "records[0] lacks field 'monthly_spend'"),
        (
            '{"records": [{"age": 1, "plan": "pro", "monthly_spend": 1, "colour": "red"}]}',
            400,
            "unknown field(s) 'colour'",
        ),
        (
            '{"records": [{"age": "old", "plan": "pro", "monthly_spend": 1}]}',
            400,
            "record 0: field 'age': 'old' is not a number",
        ),
        ('{"records": [{"age": true, "plan": "pro", "monthly_spend": 1}]}', 400, "field 'age' is a boolean"),
        (
            '{"records": [{"age": [1], "plan": "pro", "monthly_spend": 1}]}',
            400,
            "field 'age' is a JSON array",
        ),
        ('{"records": [{"age": 1e999, "plan": "pro", "monthly_spend": 1}]}', 400, "not a finite number"),
        # The container reads values as float32 and answers 415 for one beyond it: the API says 400 first.
        ('{"records": [{"age": 1e39, "plan": "pro", "monthly_spend": 1}]}', 400, "beyond the range XGBoost"),
        ('{"records": [{"age": "-3.5e38", "plan": "pro", "monthly_spend": 1}]}', 400, "beyond the range"),
        ('{"instances": [[1, "pro"]]}', 400, "instances[0] has 2 values; the model takes 3"),
        ('{"instances": [{"age": 1}]}', 400, "instances[0] is a JSON object"),
        ('{"records": [' + "1" * 5000 + "]}", 400, "cannot be read"),
        ("[" * 100_000 + "]" * 100_000, 400, "nests too deeply"),
        ('{"records": [{"' + "é" * 5000 + '": 1}]}', 400, "unknown field(s) 'éééé"),
        (
            '{"records": [{"age": 1, "plan": 2, "monthly_spend": 1}]}',
            400,
            "the number 2, which is not one of",
        ),
    ],
)
def test_bad_payloads_are_4xx_naming_what_is_wrong(
    api: Api, body: str | None, status: int, message: str
) -> None:
    answer_status, answer = api.call(proxy_event("POST", "/predict", body))
    assert answer_status == status, answer
    assert message in answer["message"], answer["message"]
    assert api.invocations() == [], "nothing reaches the endpoint"


def test_echoed_names_are_cut_short(api: Api) -> None:
    status, answer = api.predict({"records": [{"x" * 100_000: 1}]})
    assert status == 400 and len(answer["message"]) < 500


def test_a_number_that_is_a_category_as_written_is_taken(
    start_api: Start, one_feature_model: TrainedModel
) -> None:
    schema = DatasetSchema(
        columns=("zone", "y"),
        target=Target("y", ProblemType.REGRESSION),
        features=(Feature("zone", FeatureKind.CATEGORICAL, categories=("10", "20")),),
    )
    served = start_api(one_feature_model)
    served.serve(schema)
    assert served.predict({"records": [{"zone": 20}]})[0] == 200
    assert served.sent_lines() == ["2,1"]


def test_padded_categories_do_not_grow_the_warm_containers_memory(api: Api) -> None:
    for padding in range(1, 30):
        assert api.predict({"records": [{**RECORD, "plan": "pro" + " " * padding}]})[0] == 200
    encoder = api.handler.models.current().encoder
    assert all(
        len(codes._spellings) == len(feature.categories)
        for feature, codes in zip(encoder.features, encoder._encoders, strict=True)
        if feature.kind is FeatureKind.CATEGORICAL
    )


def test_unreadable_serving_record_is_503(start_api: Start, binary_model: TrainedModel) -> None:
    served = start_api(binary_model)
    served.s3.put_object(Bucket=DATA_BUCKET, Key=SERVING_RECORD, Body=b'{"model": "m"}')
    status, answer = served.predict({"records": [RECORD]})
    assert status == 503 and "could not be read" in answer["message"]


def test_an_answer_too_large_for_lambda_is_413(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api.handler, "MAX_ANSWER_BYTES", 100)
    status, answer = api.predict({"records": [RECORD] * 5})
    assert status == 413 and "fewer records" in answer["message"]


def test_too_many_records_is_413(api: Api) -> None:
    limit = int(PREDICT_ENVIRONMENT["MAX_RECORDS"])
    status, answer = api.predict({"records": [RECORD] * (limit + 1)})
    assert status == 413 and f"at most {limit}" in answer["message"]


def test_records_larger_than_the_endpoint_takes_are_413_before_calling_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        api.handler, "environment", dataclasses.replace(api.handler.environment, max_payload_bytes=30)
    )
    status, answer = api.predict({"records": [RECORD] * 3})
    assert status == 413 and "send fewer records" in answer["message"]
    assert api.invocations() == []


def test_unknown_route_is_404(api: Api) -> None:
    status, answer = api.call(proxy_event("DELETE", "/predict"))
    assert status == 404 and answer["requestId"]


# ------------------------------------------------------------------------------------ endpoint failures


@pytest.mark.parametrize(
    ("failure", "status", "message"),
    [
        ((424, "ModelError", {"OriginalStatusCode": 500, "OriginalMessage": "boom"}), 502, "status 500"),
        ((429, "ModelNotReadyException", {}), 503, "retry shortly"),
        ((400, "ThrottlingException", {}), 503, "retry shortly"),
        ((503, "ServiceUnavailable", {}), 503, "retry shortly"),
        ((500, "InternalFailure", {}), 502, "InternalFailure"),
        ((400, "ValidationError", {}), 503, "no model is serving"),
    ],
)
def test_endpoint_errors_are_502_or_503_with_the_request_id_and_no_trace(
    start_api: Start,
    binary_model: TrainedModel,
    failure: tuple[int, str, dict[str, Any]],
    status: int,
    message: str,
) -> None:
    code_status, code, fields = failure
    error = ServiceError(
        code, f"{code} for endpoint {ENDPOINT} of account {ACCOUNT}", status=code_status, fields=fields
    )
    served = start_api(binary_model, failure=error)
    served.serve(CHURN)
    answer_status, answer = served.predict({"records": [RECORD]})
    assert answer_status == status and message in answer["message"]
    assert answer["requestId"] == "c6af9ac6-7b61-11e6"
    # SageMaker's and the container's own messages stay in the log: they name the account, or echo data.
    assert "Traceback" not in json.dumps(answer)
    assert ACCOUNT not in answer["message"] and f"endpoint {ENDPOINT}" not in answer["message"]


def test_unknown_endpoint_is_503_and_the_serving_record_is_read_again(
    start_api: Start, binary_model: TrainedModel
) -> None:
    served = start_api(binary_model, endpoint="another-endpoint")
    served.serve(CHURN)
    assert served.predict({"records": [RECORD]})[0] == 503
    assert served.handler.models._read_at is None


def test_endpoint_that_does_not_answer_in_time_is_504(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # The read timeout botocore raises when the endpoint is slower than the function may wait.
    def no_answer(**_: Any) -> Any:
        raise ReadTimeoutError(endpoint_url=f"https://runtime.sagemaker/endpoints/{ENDPOINT}/invocations")

    runtime = shared.aws.client("sagemaker-runtime", read_timeout=1, max_attempts=1)
    monkeypatch.setattr(runtime, "invoke_endpoint", no_answer)
    monkeypatch.setattr(api.handler, "client", lambda *args, **kwargs: runtime)

    status, answer = api.predict({"records": [RECORD]})

    assert status == 504 and "did not answer in time" in answer["message"]


# ------------------------------------------------------------------------ one encoding for both sides


def test_a_record_is_encoded_for_the_model_exactly_as_the_transform_wrote_it(
    pipeline: Pipeline, start_api: Start, tmp_path: Path
) -> None:
    body = churn_csv(60, seed=7)
    pipeline.deliver(pipeline.upload("raw/churn/jan.csv", body))
    (schema_key,) = [
        k for k in pipeline.keys("processed/churn/") if k.count("/") == 3 and k.endswith("schema.json")
    ]
    part_keys = [k for k in pipeline.keys("processed/churn/") if "/part-" in k]
    written = sorted(
        line.split(",", 1)[1] for key in part_keys for line in pipeline.read(key).decode().splitlines()
    )
    schema = DatasetSchema.from_json(pipeline.read(schema_key))
    # A model trained on the run's own training channel, as its tuning job's jobs train.
    train_lines = [
        line for key in part_keys if "/train/" in key for line in pipeline.read(key).decode().splitlines()
    ]
    model = trained(tmp_path / "train", train_lines, objective="binary:logistic")

    served = start_api(model)
    served.serve(None, key=schema_key)
    records = list(csv.DictReader(io.StringIO(body.decode())))
    status, answer = served.predict({"records": records})

    assert status == 200, answer
    assert len(records) == len(written) == len(answer["predictions"])
    assert sorted(served.sent_lines()) == written
    positive = schema.target.classes[1]
    assert [p["probabilities"][positive] for p in answer["predictions"]] == model.scores(served.sent_lines())
    assert all(TARGET in record for record in records), "the target in a record is left out, not refused"


# ------------------------------------------------------------------------------------------------ fuzz

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
NEAR_VALID = st.fixed_dictionaries(
    {
        "records": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "age": JSON_VALUES,
                    "plan": st.sampled_from(["basic", "pro", "", "NA", "x"]) | JSON_VALUES,
                    "monthly_spend": JSON_VALUES,
                    "customer_id": JSON_VALUES,
                    "churned": JSON_VALUES,
                },
            ),
            max_size=5,
        )
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=JSON_VALUES | NEAR_VALID)
def test_no_payload_makes_the_function_answer_5xx(api: Api, document: Any) -> None:
    status, answer = api.predict(copy.deepcopy(document))
    assert status < 500, answer
    assert status == 200 or answer["message"]
