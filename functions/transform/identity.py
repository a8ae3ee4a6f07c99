"""The identity of one uploaded object version, and the run it becomes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class UploadIdentity:
    """One version of one uploaded object."""

    bucket: str
    key: str
    version_id: str | None
    etag: str
    last_modified: datetime

    @property
    def digest(self) -> str:
        version = self.version_id or f"etag:{self.etag}"
        return hashlib.sha256(f"{self.bucket}\n{self.key}\n{version}".encode()).hexdigest()

    @property
    def run_id(self) -> str:
        """Sortable by upload time, unique per object version, the same on every delivery (the form
        `shared.dataset_store.RUN_ID` recognises)."""
        return f"{self.last_modified:%Y%m%dT%H%M%SZ}-{self.digest[:12]}"
