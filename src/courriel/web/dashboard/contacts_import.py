"""CSV import of contacts from the dashboard, with a progress page.

Routes (area "marketing", marketers and owners only):

- ``GET /contacts/import``: the form (file, optional list, optional consent), the same
  choices as ``courriel contacts import FILE --list NAME --consent STATUS``.
- ``POST /contacts/import`` (multipart): the upload is streamed to a temporary file
  (Litestar spools a part to disk past 1 MiB; it is then copied in 1 MiB pieces to our
  own file), a job starts :func:`courriel.marketing.csvio.import_contacts` in the
  background, and the browser goes to the job's page (303).
- ``GET /contacts/import/{job}``: the job's progress: rows read (from the importer's
  ``progress`` callback, after each batch), then imported / updated / unchanged and every
  refused row with its line number. htmx polls the fragment every second until done.

Invariants:
- Jobs live in this process's memory (:data:`_JOBS`), the last :data:`KEEP_JOBS` of
  them: a restart forgets them (an import cut short by a restart can be run again:
  importing is idempotent), and on a fleet of nodes the progress page must reach the
  node that took the upload (sticky sessions). Job ids are random and unguessable.
- The temporary file is deleted when the job ends, whatever its outcome.
- A file the importer refuses whole (no header, no email column) or that is not UTF-8
  ends the job as "failed" with the reason; nothing is lost silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.response import Redirect

from courriel.errors import InvalidInput
from courriel.marketing.csvio import RowError, import_contacts
from courriel.marketing.types import CONSENT_STATUSES
from courriel.web.app import Services
from courriel.web.dashboard.access import allow, require_session
from courriel.web.dashboard.contacts import require_marketer
from courriel.web.dashboard.render import page

__all__ = ["KEEP_JOBS", "MAX_UPLOAD", "ROUTES", "ImportJob"]

_log = logging.getLogger(__name__)
MAX_UPLOAD = 2 * 1024 * 1024 * 1024  # 2 GiB: about 10M contact rows
KEEP_JOBS = 50
MAX_ERRORS_SHOWN = 1000
_COPY = 1024 * 1024


@dataclass(slots=True, kw_only=True)
class ImportJob:
    """One import's state, updated by its task and read by the progress page."""

    id: str
    filename: str
    list_name: str | None
    consent: str | None
    started_by: str
    started_at: datetime
    state: str = "running"  # running | done | failed
    read: int = 0  # rows read so far (after each batch)
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    message: str = ""  # why a failed job failed
    finished_at: datetime | None = None
    task: asyncio.Task[None] | None = None  # a strong reference while it runs


_JOBS: dict[str, ImportJob] = {}


def _remember(job: ImportJob) -> None:
    _JOBS[job.id] = job
    finished = [j for j in _JOBS.values() if j.state != "running"]
    for old in finished[: max(0, len(_JOBS) - KEEP_JOBS)]:
        del _JOBS[old.id]


async def _run(job: ImportJob, services: Services, path: Path) -> None:
    """The job's task: import the file, record the outcome, delete the file."""

    def progress(rows: int) -> None:
        job.read = rows

    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            report = await import_contacts(
                services.db,
                stream,
                list_name=job.list_name,
                consent=job.consent,
                now=services.clock(),
                progress=progress,
            )
        job.imported, job.updated, job.unchanged = report.imported, report.updated, report.unchanged
        job.errors = report.errors
        taken = report.imported + report.updated + report.unchanged
        job.read = max(job.read, taken + len(report.errors))
        job.state = "done"
    except InvalidInput as exc:
        job.state, job.message = "failed", str(exc)
    except UnicodeDecodeError as exc:
        job.state = "failed"
        job.message = f"the file is not UTF-8 text (byte {exc.start}); rows before it were imported"
    except Exception:
        _log.exception("contact import %s failed", job.id)
        job.state, job.message = "failed", "the import stopped on an internal error (see the log)"
    finally:
        job.finished_at = services.clock()
        job.task = None
        with contextlib.suppress(OSError):
            os.unlink(path)


def _form_page(
    request: Request[Any, Any, Any], *, error: str = "", status: int = 200, **values: str
) -> Response[str]:
    return page(
        request,
        "contacts/import.html",
        status=status,
        active="contacts",
        title="Import contacts",
        error=error,
        statuses=CONSENT_STATUSES,
        values=values,
    )


@get("/contacts/import", **allow("marketing"))
async def import_form(request: Request[Any, Any, Any]) -> Response[str]:
    """The upload form."""
    require_marketer(request, "import contacts")
    return _form_page(request)


async def _save(upload: UploadFile) -> Path:
    """Copy the upload to a temporary file of ours, 1 MiB at a time."""
    fd, name = tempfile.mkstemp(prefix="courriel-import-", suffix=".csv")
    try:
        await upload.seek(0)
        while chunk := await upload.read(_COPY):
            await asyncio.to_thread(os.write, fd, chunk)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)
    return Path(name)


@post("/contacts/import", request_max_body_size=MAX_UPLOAD, **allow("marketing"))
async def start_import(request: Request[Any, Any, Any], services: Services) -> Response[Any]:
    """Save the upload and start the import in the background; 303 to its progress page."""
    form = await request.form()
    upload = form.get("file")
    list_name = str(form.get("list") or "").strip()[:128]
    consent = str(form.get("consent") or "")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _form_page(
            request, error="Choose a CSV file.", status=422, list=list_name, consent=consent
        )
    if consent and consent not in CONSENT_STATUSES:
        return _form_page(
            request, error="Unknown consent status.", status=422, list=list_name, consent=""
        )
    try:
        path = await _save(upload)
    finally:
        await upload.close()
    job = ImportJob(
        id=secrets.token_urlsafe(16),
        filename=Path(upload.filename).name[:255],
        list_name=list_name or None,
        consent=consent or None,
        started_by=require_session(request).admin.email,
        started_at=services.clock(),
    )
    _remember(job)
    job.task = asyncio.create_task(_run(job, services, path), name=f"contact-import-{job.id}")
    return Redirect(path=f"/contacts/import/{job.id}", status_code=303)


@get("/contacts/import/{job_id:str}", **allow("marketing"))
async def import_progress(request: Request[Any, Any, Any], job_id: str) -> Response[str]:
    """The job's progress: a full page, or the polled fragment for htmx."""
    require_marketer(request, "import contacts")
    job = _JOBS.get(job_id)
    if job is None:
        return page(
            request,
            "error.html",
            status=404,
            active="contacts",
            title="No such import",
            message="This import is unknown here: it finished long ago or the server restarted.",
        )
    htmx = request.headers.get("hx-request") == "true"
    name = "contacts/_import_job.html" if htmx else "contacts/import_job.html"
    return page(
        request,
        name,
        active="contacts",
        title="Import progress",
        job=job,
        errors=job.errors[:MAX_ERRORS_SHOWN],
    )


ROUTES = [import_form, start_import, import_progress]
