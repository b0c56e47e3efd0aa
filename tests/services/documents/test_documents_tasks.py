"""Directive tasks: a leader assigns tasks from an issued document; progress is reported;
overdue tasks are listed per agency and per person."""

from __future__ import annotations

from datetime import date, timedelta

import grpc
import pytest

from lgsp.api.documents.v1 import documents_pb2 as pb

from .workflow_support import SNV, STP, UBND, Env, env_fixture, to_signed  # noqa: F401


async def issued(env: Env) -> pb.Document:
    signed = await to_signed(env)
    return (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
        )
    ).document


async def test_tasks_from_a_document_and_what_is_overdue(env: Env) -> None:
    doc = await issued(env)
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    later = (date.today() + timedelta(days=30)).isoformat()
    late_task = (
        await env.as_("ubnd-ld").CreateDirectiveTask(
            pb.CreateDirectiveTaskRequest(
                task=pb.DirectiveTask(
                    document_id=doc.id,
                    description="Rà soát, đơn giản hóa thủ tục hành chính lĩnh vực tư pháp",
                    assignee_agency_code=STP,
                    assignee_user_id="stp-cv",
                    cooperating_agency_codes=[SNV],
                    due_date=yesterday,
                )
            )
        )
    ).task
    assert late_task.status == pb.TASK_STATUS_OPEN and late_task.overdue
    assert late_task.directing_agency_code == UBND
    on_time = (
        await env.as_("ubnd-ld").CreateDirectiveTask(
            pb.CreateDirectiveTaskRequest(
                task=pb.DirectiveTask(
                    document_id=doc.id,
                    description="Báo cáo kết quả",
                    assignee_agency_code=SNV,
                    due_date=later,
                )
            )
        )
    ).task
    assert not on_time.overdue

    # Only a leader assigns tasks; an unknown agency is named.
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("ubnd-cv").CreateDirectiveTask(
            pb.CreateDirectiveTaskRequest(
                task=pb.DirectiveTask(document_id=doc.id, description="x", assignee_agency_code=STP)
            )
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("ubnd-ld").CreateDirectiveTask(
            pb.CreateDirectiveTaskRequest(
                task=pb.DirectiveTask(
                    document_id=doc.id, description="x", assignee_agency_code="000.55.55.H27"
                )
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # Overdue per person and per agency; the directing agency sees both.
    mine = (
        await env.as_("stp-cv").ListDirectiveTasks(
            pb.ListDirectiveTasksRequest(assignee_user_id="stp-cv", overdue_only=True)
        )
    ).tasks
    assert [t.id for t in mine] == [late_task.id]
    stp = (
        await env.as_("stp-ld").ListDirectiveTasks(
            pb.ListDirectiveTasksRequest(assignee_agency_code=STP, overdue_only=True)
        )
    ).tasks
    assert [t.id for t in stp] == [late_task.id]
    snv = (
        await env.as_("snv-cv").ListDirectiveTasks(
            pb.ListDirectiveTasksRequest(assignee_agency_code=SNV, overdue_only=True)
        )
    ).tasks
    assert snv == []
    everything = (
        await env.as_("ubnd-ld").ListDirectiveTasks(
            pb.ListDirectiveTasksRequest(document_id=doc.id)
        )
    ).tasks
    assert [t.id for t in everything] == [late_task.id, on_time.id]  # earliest due first
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("snv-cv").ListDirectiveTasks(
            pb.ListDirectiveTasksRequest(assignee_agency_code=STP)
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    got = (await env.as_("ubnd-ld").GetDocument(pb.GetDocumentRequest(id=doc.id))).document
    assert sorted(t.id for t in got.directive_tasks) == sorted([late_task.id, on_time.id])

    # Another agency's official cannot report on it; the official in charge can.
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("snv-cv").UpdateDirectiveTaskStatus(
            pb.UpdateDirectiveTaskStatusRequest(
                task_id=late_task.id,
                etag=late_task.etag,
                status=pb.TASK_STATUS_DONE,
                progress_note="x",
            )
        )
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    t = (
        await env.as_("stp-cv").UpdateDirectiveTaskStatus(
            pb.UpdateDirectiveTaskStatusRequest(
                task_id=late_task.id,
                etag=late_task.etag,
                status=pb.TASK_STATUS_IN_PROGRESS,
                progress_note="Đã rà soát 12/30 thủ tục.",
            )
        )
    ).task
    assert t.status == pb.TASK_STATUS_IN_PROGRESS and t.overdue
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("stp-cv").UpdateDirectiveTaskStatus(
            pb.UpdateDirectiveTaskStatusRequest(
                task_id=t.id, etag=t.etag, status=pb.TASK_STATUS_DONE
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # done needs the result
    t = (
        await env.as_("stp-cv").UpdateDirectiveTaskStatus(
            pb.UpdateDirectiveTaskStatusRequest(
                task_id=t.id,
                etag=t.etag,
                status=pb.TASK_STATUS_DONE,
                progress_note="Hoàn thành rà soát 30 thủ tục.",
            )
        )
    ).task
    assert t.status == pb.TASK_STATUS_DONE and not t.overdue and t.HasField("complete_time")
    mine = (
        await env.as_("stp-cv").ListDirectiveTasks(
            pb.ListDirectiveTasksRequest(assignee_user_id="stp-cv", overdue_only=True)
        )
    ).tasks
    assert mine == []
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("stp-cv").UpdateDirectiveTaskStatus(
            pb.UpdateDirectiveTaskStatusRequest(
                task_id=t.id, etag=t.etag, status=pb.TASK_STATUS_IN_PROGRESS, progress_note="x"
            )
        )
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_tasks_need_an_issued_document(env: Env) -> None:
    d = (
        await env.as_("ubnd-ld").CreateDraft(
            pb.CreateDraftRequest(
                document=pb.Document(
                    agency_code=UBND,
                    document_type_code="CT",
                    subject="Chỉ thị về phòng chống thiên tai",
                )
            )
        )
    ).document
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("ubnd-ld").CreateDirectiveTask(
            pb.CreateDirectiveTaskRequest(
                task=pb.DirectiveTask(
                    document_id=d.id, description="Ứng phó bão", assignee_agency_code=STP
                )
            )
        )
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
