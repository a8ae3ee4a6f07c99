"""What the CLI's commands run: the rehearsal of one dataset, and serving its stack afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rehearsal.faults import FAULTS, Fault, FaultContext
from rehearsal.local_stack import API_CLIENT_USER, LocalStack, StackOptions
from rehearsal.rehearse import Pipeline, Progress, Rehearsal, feature_importance, records_from_csv
from rehearsal.report import best_trial, summary_table, write_report
from rehearsal.samples import SampleDataset, sample_dataset, user_dataset
from settings import TUNING_QUIET_SECONDS

CONFIG = "serverless-ml-pipeline"
SAMPLE_RECORDS = 3
REHEARSAL_QUIET_SECONDS = 1


@dataclass(frozen=True)
class RehearsalOptions:
    stack: str = "dev"
    csv: Path | None = None
    dataset: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    trials: int = 8
    config: Mapping[str, str] = field(default_factory=dict)
    time_scale: float = 600.0
    report: Path | None = None
    fault: str | None = None

    def sample(self) -> SampleDataset:
        if self.csv is None:
            return sample_dataset()
        return user_dataset(self.csv, dataset=self.dataset, settings=dict(self.settings))

    @property
    def staged_fault(self) -> Fault | None:
        return FAULTS[self.fault] if self.fault else None

    def stack_options(self, work_dir: Path) -> StackOptions:
        fault = self.staged_fault
        config = {
            f"{CONFIG}:tuningMaxJobs": str(self.trials),
            # SQS delays each tuning request by the quiet period in real seconds, which the rehearsal's
            # time scale does not compress: one second here, said so in the progress lines.
            f"{CONFIG}:tuningQuietSeconds": str(REHEARSAL_QUIET_SECONDS),
            **(fault.config if fault else {}),
            **self.config,
        }
        return StackOptions(
            stack=self.stack,
            config=config,
            time_scale=self.time_scale,
            revocations=fault.revocations if fault else (),
            work_dir=work_dir,
        )


def run_rehearsal(
    options: RehearsalOptions,
    *,
    progress: Progress = print,
    work_dir: Path | None = None,
    keep: Callable[[LocalStack, Rehearsal], None] | None = None,
) -> Rehearsal:
    """Stand the stack up, take the dataset through it, and tear it down (after `keep`, if given). The
    functions' logs stay in `work_dir/logs` when one is given; otherwise they go with a temporary one."""
    with contextlib.ExitStack() as scratch:
        if work_dir is None:
            work_dir = Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix="rehearsal-")))
        return _rehearse_in(options, work_dir, progress, keep)


def _rehearse_in(
    options: RehearsalOptions,
    work: Path,
    progress: Progress,
    keep: Callable[[LocalStack, Rehearsal], None] | None,
) -> Rehearsal:
    began = time.perf_counter()
    dataset = options.sample()
    result = Rehearsal(dataset.dataset)
    with LocalStack(options.stack_options(work)) as stack:
        result.timings["start-up"] = stack.timings["program"]
        result.timings["stack"] = stack.timings["stack"] + stack.timings["services"]
        result.api_url, result.api_key = stack.api.url, stack.api.api_key
        result.endpoint = stack.output("endpoint_name")
        progress(f"stack {options.stack} up: {len(stack.run.resources)} resources, API {stack.api.url}")
        pipeline = Pipeline(stack, progress=progress)
        fault = options.staged_fault
        context = FaultContext(stack, pipeline, dataset, result)
        if fault:
            progress(f"fault: {fault.description}")
            fault.before(context)
        pipeline.put_settings(dataset)

        first_upload = fault.first_upload(dataset) if fault and fault.first_upload else dataset.good
        step = time.perf_counter()
        if fault and not fault.transform_finishes:
            stack.upload(first_upload.key, first_upload.body)
            fault.after(context)
            return result
        outcome = pipeline.transform(first_upload)
        result.outcomes.append(outcome)
        result.timings["transform"] = time.perf_counter() - step
        if fault and fault.replaces_main_path:
            fault.after(context)
            return result
        if outcome.rejection:
            return result

        step = time.perf_counter()
        quiet = stack.lambda_.spec(stack.output("transform_function")).environment["TUNING_QUIET_SECONDS"]
        progress(
            f"quiet period: {quiet} s (the rehearsal's tuningQuietSeconds; the stack default is "
            f"{TUNING_QUIET_SECONDS.default} s)"
        )
        pipeline.tune(outcome)
        result.timings["tuning"] = time.perf_counter() - step

        step = time.perf_counter()
        pipeline.deployment(outcome)
        served = pipeline.serving()
        result.timings["deployment"] = time.perf_counter() - step

        step = time.perf_counter()
        # The dataset's own target, else the stack's, as the transform function was configured with it.
        transform = stack.lambda_.spec(stack.output("transform_function"))
        target = dataset.settings.get("targetColumn") or transform.environment["TARGET_COLUMN"]
        result.sample_records = records_from_csv(dataset.good.body, str(target), SAMPLE_RECORDS)
        status, answer = pipeline.predict(result.sample_records)
        result.timings["first prediction"] = time.perf_counter() - step
        if status != 200:
            raise RuntimeError(f"POST /predict answered {status}: {answer}")
        result.predictions = answer
        progress(f"POST /predict {status}: {json.dumps(answer)[:300]}")

        result.baseline, result.xgboost_version, result.image = pipeline.baseline(outcome, work / "baseline")
        best = best_trial(outcome.trials, outcome.objective_direction)
        if best:
            model = pipeline.sagemaker.describe_training_job(TrainingJobName=best.training_job)
            result.feature_importance = feature_importance(
                stack, model["ModelArtifacts"]["S3ModelArtifacts"], served["schema"]
            )
        if dataset.broken is not None:
            result.outcomes.append(pipeline.transform(dataset.broken))
        if fault:
            fault.after(context)
        result.timings["whole rehearsal"] = time.perf_counter() - began
        if keep:
            keep(stack, result)
    return result


@contextlib.contextmanager
def serving(
    options: RehearsalOptions, *, progress: Progress = print
) -> Iterator[tuple[LocalStack, Rehearsal]]:
    """The rehearsal's stack, up with its model deployed, for the body of a `with` (the rehearsal runs
    in a thread of its own and waits there until the body ends)."""
    up: queue.Queue[tuple[LocalStack, Rehearsal] | BaseException] = queue.Queue()
    done = threading.Event()

    def keep(stack: LocalStack, result: Rehearsal) -> None:
        up.put((stack, result))
        done.wait()

    def rehearse_in_thread() -> None:
        # The program runs under Pulumi's mocks, which need an event loop of the thread's own.
        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            run_rehearsal(options, progress=progress, keep=keep)
        except BaseException as error:  # handed to the caller, which raises it
            up.put(error)
        # Read only if keep never ran: an upload rejected, a fault that stops before the prediction.
        up.put(RuntimeError("the rehearsal ended before its model served predictions"))

    thread = threading.Thread(target=rehearse_in_thread, name="rehearsal", daemon=True)
    thread.start()
    try:
        ready = up.get()
        if isinstance(ready, BaseException):
            raise ready
        yield ready
    finally:
        done.set()
        thread.join()


def _work_dir(options: RehearsalOptions) -> Path | None:
    """Beside the report, emptied first: the last run's function logs, for a look after a failure."""
    if options.report is None:
        return None
    work = options.report.parent / "work"
    shutil.rmtree(work, ignore_errors=True)
    return work


def rehearse(options: RehearsalOptions) -> int:
    """Run the whole pipeline on the bundled sample (or your CSV) on this machine: the program's stack in
    local emulators, its functions from their packages, real XGBoost tuning, the local API. Ends with a
    summary table and an HTML report of the trials and the model's feature importance."""
    result = run_rehearsal(options, work_dir=_work_dir(options))
    return _finish(options, result)


def _finish(options: RehearsalOptions, result: Rehearsal) -> int:
    first = result.first
    if first.rejection:
        print(f"\n{first.upload} was rejected: {first.rejection['reason']}")
        return 1
    direction = first.objective_direction
    print("\nsummary\n" + summary_table(result, direction))
    if options.report:
        options.report.parent.mkdir(parents=True, exist_ok=True)
        print(f"report: {write_report(result, direction, options.report)}")
    return 0


def serve(options: RehearsalOptions, *, state_file: Path) -> int:
    """Rehearse, then keep the local stack and its API up until interrupted (Ctrl-C): the URL and the
    key are printed, and `python -m rehearsal predict` finds them and the API client's credentials."""

    def keep(stack: LocalStack, result: Rehearsal) -> None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(stack.api_client.to_json())
        how = "signed by" if stack.api_client.credentials else "with an ID token of"
        print(
            f"\nserving: {stack.api.url}/predict  x-api-key: {stack.api.api_key}, requests {how} "
            f"{API_CLIENT_USER} (`python -m rehearsal predict` sends them so; Ctrl-C stops)"
        )
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            print("stopping")
        finally:
            state_file.unlink(missing_ok=True)

    result = run_rehearsal(options, work_dir=_work_dir(options), keep=keep)
    return _finish(options, result)
