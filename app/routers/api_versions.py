"""JSON API for dataset versions: create one from a spec (built by the worker), follow it, compare, download."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from app.schemas import API_ERRORS, TaskChangeOut, VersionIn, VersionOut
from app.services import version_files
from app.services import versions as version_service
from app.web.deps import (
    ADMIN,
    ANY_ROLE,
    EDITORS,
    STRICT_QUERY,
    CurrentPrincipal,
    CurrentUser,
    RowId,
    SessionDep,
    settings_of,
)
from app.web.sending import send_file

router = APIRouter(prefix="/api/v1/versions", tags=["versions"], responses=API_ERRORS,
                   dependencies=[STRICT_QUERY])


@router.get("", dependencies=[ANY_ROLE], response_model=list[VersionOut])
def list_versions(session: SessionDep):
    return [VersionOut.model_validate(version).model_copy(update={"manifest": None})
            for version in version_service.list_versions(session)]


@router.post("", dependencies=[EDITORS], response_model=VersionOut, status_code=201)
def create_version(request: Request, session: SessionDep, principal: CurrentPrincipal, data: VersionIn):
    """Queues the build; poll the version (or its job) until `status` is `ready` or `failed`. A task whose latest
    quality check failed is refused (409), unless an admin gives `qc_override_reason`."""
    return version_service.create(session, spec=data.spec, name=data.name, actor_id=principal.user.id,
                                  qc_override_reason=data.qc_override_reason,
                                  may_override=principal.is_admin,
                                  exports_on_bucket=version_files.on_object_storage(settings_of(request)))


@router.get("/{version_id}", dependencies=[ANY_ROLE], response_model=VersionOut)
def get_version(session: SessionDep, version_id: RowId):
    return version_service.get(session, version_id=version_id)


@router.get("/{older_id}/diff/{newer_id}", dependencies=[ANY_ROLE], response_model=list[TaskChangeOut])
def diff_versions(session: SessionDep, older_id: RowId, newer_id: RowId):
    older = version_service.get(session, version_id=older_id)
    newer = version_service.get(session, version_id=newer_id)
    return [TaskChangeOut.model_validate(change) for change in version_service.diff(older, newer)]


@router.get("/{version_id}/files/{name:path}", dependencies=[ANY_ROLE], response_class=FileResponse,
            responses={200: {"description": "The file, streamed."}})
def version_file(request: Request, session: SessionDep, version_id: RowId, name: str):
    version = version_service.get(session, version_id=version_id)
    return send_file(version_service.file_of(settings_of(request), version, name))


@router.delete("/{version_id}", dependencies=[ADMIN], status_code=204)
def delete_version(request: Request, session: SessionDep, user: CurrentUser, version_id: RowId):
    version_service.delete(session, settings_of(request), version_id=version_id, actor_id=user.id)
    return Response(status_code=204)
