"""The rehearsal's report: a summary table for the terminal and an HTML page with two pictures a data
team would rather look at than read: the tuning trials (objective per trial, the best marked) and the
best model's feature importance by column name."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a build machine

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from rehearsal.rehearse import Rehearsal, TrialRow

TOP_FEATURES = 15
# The xgboost each built-in container version installs (aws/sagemaker-xgboost-container, each version's
# branch: `ARG XGBOOST_VERSION` in docker/<version>/base/Dockerfile.cpu).
PINNED_XGBOOST = {"1.2-2": "1.2.0", "1.3-1": "1.3.3", "1.5-1": "1.5.2", "1.7-1": "1.7.4", "3.0-5": "3.0.5"}


def trained_with(image: str, installed: str) -> str:
    container = image.rsplit(":", 1)[-1]
    pinned = PINNED_XGBOOST.get(container)
    if pinned == installed:
        return f"xgboost {installed}, the version container {container} pins"
    return f"xgboost {installed}, the nearest available: container {container} pins {pinned or 'another'}"


def best_trial(trials: Sequence[TrialRow], direction: str) -> TrialRow | None:
    scored = [t for t in trials if t.objective is not None and t.status == "Completed"]
    if not scored:
        return None
    pick = max if direction == "Maximize" else min
    return pick(scored, key=lambda t: t.objective or 0.0)


def summary_table(rehearsal: Rehearsal, direction: str) -> str:
    first = rehearsal.first
    rows: list[tuple[str, str]] = []
    if first.manifest:
        counts = first.manifest["rows"]
        rows.append(("rows", ", ".join(f"{k} {v:,}" for k, v in counts.items())))
    for outcome in rehearsal.outcomes[1:]:
        if outcome.rejection:
            rows.append((f"rejected {outcome.upload}", str(outcome.rejection["reason"])[:100]))
    best = best_trial(first.trials, direction)
    metric = first.objective_metric or "objective"
    if best and best.objective is not None:
        rows.append(("best trial", f"{best.training_job}: {metric} {best.objective:.4f}"))
        rows.append(
            ("its hyperparameters", ", ".join(f"{k}={v}" for k, v in sorted(best.hyperparameters.items())))
        )
    if rehearsal.baseline is not None:
        rows.append(
            ("plain XGBoost, same split", f"{metric} {rehearsal.baseline:.4f} (default hyperparameters)")
        )
    rows.append(("trained with", trained_with(rehearsal.image, rehearsal.xgboost_version)))
    rows.append(("endpoint", rehearsal.endpoint))
    rows.append(("API", f"{rehearsal.api_url}  (x-api-key: {rehearsal.api_key})"))
    if rehearsal.predictions:
        rows.append(("sample prediction", _prediction(rehearsal.predictions["predictions"][0])))
    rows.extend((f"time: {step}", f"{seconds:.1f} s") for step, seconds in rehearsal.timings.items())
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{width}}  {value}" for label, value in rows)


def _prediction(prediction: dict[str, Any]) -> str:
    if "label" in prediction:
        return f"{prediction['label']} (p = {prediction['probabilities'][prediction['label']]:.3f})"
    return f"{prediction['value']:.4g}"


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def trials_picture(trials: Sequence[TrialRow], metric: str, direction: str, baseline: float | None) -> str:
    figure, axes = plt.subplots(figsize=(7, 3.5))
    scored = [(i + 1, t.objective, t) for i, t in enumerate(trials) if t.objective is not None]
    axes.plot([i for i, _, _ in scored], [v for _, v, _ in scored], "-", color="#4c72b0", alpha=0.5)
    for status, marker in (("Completed", "o"), ("Stopped", "v")):
        shown = [(i, v) for i, v, t in scored if t.status == status]
        label = "trial" if status == "Completed" else "trial stopped early"
        axes.plot([i for i, _ in shown], [v for _, v in shown], marker, color="#4c72b0", label=label)
    best = best_trial(trials, direction)
    if best and best.objective is not None:
        position = next(i for i, _, t in scored if t is best)
        axes.plot(
            [position],
            [best.objective],
            "*",
            markersize=18,
            color="#dd8452",
            label=f"best ({best.objective:.4f})",
        )
    if baseline is not None:
        axes.axhline(baseline, linestyle="--", color="#55a868", label=f"plain XGBoost ({baseline:.4f})")
    failed = [i + 1 for i, t in enumerate(trials) if t.objective is None]
    for position in failed:
        axes.axvline(position, color="#c44e52", alpha=0.3)
    axes.set_xlabel("trial (training job, in start order)")
    axes.set_ylabel(metric)
    axes.set_title(f"Tuning trials ({direction.lower()} {metric})")
    axes.legend(loc="best", fontsize=8)
    return _png(figure)


def importance_picture(importance: dict[str, float]) -> str:
    top = sorted(importance.items(), key=lambda item: item[1], reverse=True)[:TOP_FEATURES]
    figure, axes = plt.subplots(figsize=(7, 0.35 * len(top) + 1))
    names = [name for name, _ in reversed(top)]
    axes.barh(names, [value for _, value in reversed(top)], color="#4c72b0")
    axes.set_xlabel("total gain")
    axes.set_title("Best model: feature importance by column")
    return _png(figure)


def write_report(rehearsal: Rehearsal, direction: str, path: Path) -> Path:
    first = rehearsal.first
    metric = first.objective_metric or "objective"
    pictures = [trials_picture(first.trials, metric, direction, rehearsal.baseline)]
    if rehearsal.feature_importance:
        pictures.append(importance_picture(rehearsal.feature_importance))
    table = html.escape(summary_table(rehearsal, direction))
    images = "\n".join(f'<img alt="" src="data:image/png;base64,{p}">' for p in pictures)
    path.write_text(
        "<!doctype html><meta charset=utf-8>"
        f"<title>Rehearsal of {html.escape(rehearsal.dataset)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "pre{background:#f6f6f6;padding:1em}img{display:block;margin:1em 0}</style>"
        f"<h1>Rehearsal of {html.escape(rehearsal.dataset)}</h1><pre>{table}</pre>{images}\n"
    )
    return path
