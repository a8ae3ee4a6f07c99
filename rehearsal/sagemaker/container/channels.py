"""A training job's channels as the container checks and reads them (data_utils.py; channel_validation.py
of sagemaker_algorithm_toolkit and algorithm_mode).

Each channel directory is read as data_utils.py does: hidden files refused, the first line of every data
file sniffed with csv.Sniffer, all files (to a depth of 3) symlinked into one directory and loaded with
`DMatrix("<dir>?format=csv&label_column=0&delimiter=<d>")`; a header line is read as a data row (xgboost
parses its words as missing values, label 0).

Citations are into release-3.0.5 as the package docstring says.
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xgboost

from rehearsal.sagemaker.container.content_types import CSV, LIBSVM, VALID_CONTENT_TYPES
from rehearsal.sagemaker.container.errors import NotEmulated, UserError

MAX_FOLDER_DEPTH = 3  # data_utils.py:41


def _is_data_file(directory: str, name: str) -> bool:
    # data_utils.py:125-144.
    if not os.path.isfile(os.path.join(directory, name)):
        return False
    if name.startswith((".", "_")):
        return False
    return not (".cache" in name and ("dtrain" in name or "dval" in name))


def _csv_delimiter(sample_line: str) -> str:
    # data_utils.py:147-153.
    try:
        return csv.Sniffer().sniff(sample_line).delimiter
    except Exception as error:
        raise UserError(f"Could not determine delimiter on line {sample_line[:50]}:\n{error}") from error


def _libsvm_features(line: str) -> int:
    # _get_num_valid_libsvm_features and _is_valid_libsvm_label, data_utils.py:156-206.
    split = line.split(" ")
    label = split[0].split(":")
    if len(label) > 2:
        return -1
    for part in label:
        try:
            float(part)
        except ValueError:
            return -1
    if len(split) <= 1:
        return 0
    count = 0
    for item in split[1:]:
        # The container checks the first feature's shape on every iteration (split[1], line 177).
        if ":" not in item or len(split[1].split(":")) != 2:
            return -1
        count += 1
    return count


def validate_data_files(path: Path, file_type: str) -> None:
    """validate_data_file_path (data_utils.py:256-291): the first line of each data file of the first
    directory without subdirectories."""
    if not path.exists():
        raise UserError(f"{path} is not a valid path!")
    if path.is_file():
        files = [str(path)]
    else:
        leaf = str(path)
        for root, dirs, _ in os.walk(path):
            if dirs == []:
                leaf = root
                break
        files = [os.path.join(leaf, name) for name in os.listdir(leaf) if _is_data_file(leaf, name)]
    for name in files:
        if file_type == CSV:
            with open(name, encoding="utf-8", errors="ignore") as handle:
                _csv_delimiter(handle.readline())
        elif file_type == LIBSVM:
            _validate_libsvm(name)


def _validate_libsvm(name: str) -> None:
    with open(name, encoding="utf-8", errors="ignore") as handle:
        for line in handle:
            features = _libsvm_features(line)
            if features > 1:
                return
            if features < 0:
                raise UserError(
                    f"First line '{line[:50]}...' of file '{name.split('/')[-1]}' is not 'LIBSVM' format. "
                    "Please ensure the file is in 'LIBSVM' format."
                )


def data_size(path: Path) -> int:
    """get_size (data_utils.py:654-678); a hidden file anywhere in the channel fails the job."""
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            if name.startswith("."):
                raise UserError("Hidden file found in the data path! Remove that before training.")
            total += os.path.getsize(os.path.join(root, name))
    return total


class _TooDeep(Exception):
    pass


def _link_channel(links: Path, path: Path) -> None:
    """_make_symlinks_from_a_folder_with_warning (data_utils.py:549-574): a folder deeper than
    MAX_FOLDER_DEPTH ends the linking where it is met (the container only logs a warning), so the files
    listed after it, at every level above, are not read either."""
    with contextlib.suppress(_TooDeep):
        _link_files(links, path, 1)


def _link_files(links: Path, path: Path, depth: int) -> None:
    """_make_symlinks_from_a_folder (data_utils.py:533-546): each file linked as `<name><hash(path)>`
    (_make_symlink, 681-685)."""
    if depth > MAX_FOLDER_DEPTH:
        raise _TooDeep
    if path.is_file():
        os.symlink(path, links / f"{path.name}{hash(str(path))}")
        return
    for item in os.scandir(path):
        if item.is_file():
            os.symlink(item.path, links / f"{item.name}{hash(item.path)}")
        elif item.is_dir():
            _link_files(links, Path(item.path), depth + 1)


def read_channel(path: Path, file_type: str, csv_weights: int, links: Path, threads: int) -> Any:
    """get_dmatrix (data_utils.py:605-651) in file mode, for CSV and LIBSVM."""
    if links.exists():
        for entry in links.iterdir():
            entry.unlink()
    else:
        links.mkdir()
    _link_channel(links, path)
    if file_type == CSV:
        # _get_csv_dmatrix_file_mode (294-323): the delimiter of the first line of the first file listed.
        # Indexing, as the container does (an IndexError when every file was too deep to link).
        listed = [name for name in os.listdir(links) if os.path.isfile(links / name)]
        first = listed[0]
        with open(links / first, encoding="utf-8") as handle:
            delimiter = _csv_delimiter(handle.readline())
        uri = f"{links}?format=csv&label_column=0&delimiter={delimiter}"
        if csv_weights == 1:
            uri += "&weight_column=1"
        try:
            matrix = xgboost.DMatrix(uri, nthread=threads)
        except Exception as error:
            raise UserError(f"Failed to load csv data with exception:\n{error}") from error
    elif file_type == LIBSVM:
        try:
            matrix = xgboost.DMatrix(f"{links}?format=libsvm", nthread=threads)
        except Exception as error:
            raise UserError(f"Failed to load libsvm data with exception:\n{error}") from error
    else:
        raise NotEmulated(f"reading {file_type} channels is not emulated (CSV and LIBSVM are)")
    if matrix.get_label().size == 0:
        raise UserError(
            "Got input data without labels. Please check the input data set. If training job is running on "
            "multiple instances, please switch to using single instance if number of records in the data set "
            "is less than number of workers (16 * number of instance) in the cluster."
        )
    return matrix


def validate_channels(channels: Mapping[str, Path], content_type: str) -> None:
    """Channels.validate (sagemaker_algorithm_toolkit/channel_validation.py:71-104) for File mode,
    FullyReplicated, with the channels of algorithm_mode/channel_validation.py:20-43."""
    if "train" not in channels:
        raise UserError("Missing required channel: train")
    for name in channels:
        if name not in ("train", "validation", "code"):
            raise UserError(f"Extraneous channel found: {name}")
        supported = ("text/python",) if name == "code" else VALID_CONTENT_TYPES
        if content_type not in supported:
            value = {
                "ContentType": content_type,
                "TrainingInputMode": "File",
                "S3DistributionType": "FullyReplicated",
            }
            raise UserError(f"Channel configuration for '{name}' channel is not supported: {value}")
