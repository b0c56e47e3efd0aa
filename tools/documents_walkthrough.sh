#!/usr/bin/env bash
# The documents walkthrough of docs/documents.md ("Walkthrough"), runnable against `make run`
# from the repository's root: one document from draft to done between two sở of the demo
# province, a copy to a ministry over the national axis, a paper letter, a recall.
# Needs curl and jq; uses the repository's lgsp (.venv) and buf (node_modules). Override the
# addresses with DATA, IDP, DOCS, AXIS (and LGSP_CONFIG for `lgsp admin`) when not the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"
DATA=${DATA:-data}
IDP=${IDP:-http://127.0.0.1:8180}
DOCS=${DOCS:-http://127.0.0.1:50052}
AXIS=${AXIS:-http://127.0.0.1:8203}
SVC=lgsp.api.documents.v1.DocumentService
token() {  # an official's access token (password grant of admin-cli; public clients take none)
  curl -sf -d grant_type=password -d client_id=admin-cli -d "username=$1" \
    --data-urlencode "password=$(jq -r --arg u "$1" '.passwords[$u]' "$DATA/identity-demo.json")" \
    "$IDP/realms/lgsp/protocol/openid-connect/token" | jq -r .access_token
}
uid() { lgsp admin users list --query "$1" --json | jq -r --arg u "$1" '.[] | select(.username == $u) | .id'; }
call() {  # call USER METHOD JSON: DocumentService/METHOD as USER
  buf curl --protocol grpc --http2-prior-knowledge -H "Authorization: Bearer $(token "$1")" \
    -d "$3" "$DOCS/$SVC/$2"
}
STP=000.00.12.H27 SYT=000.00.17.H27
LEADER=$(uid thaovm.stp) HANDLER=$(uid lanvt.syt)

echo "1. draft (chuyên viên thaodt.stp)"
D=$(call thaodt.stp CreateDraft '{"document": {"agency_code": "'$STP'",
  "document_type_code": "CV", "subject": "Về việc phối hợp kiểm tra an toàn thực phẩm",
  "summary": "Đề nghị Sở Y tế cử cán bộ phối hợp.", "due_date": "2026-12-31",
  "recipients": [{"agency_code": "'$SYT'", "name": "Sở Y tế", "kind": "RECIPIENT_KIND_MAIN"},
                 {"agency_code": "000.00.00.G15", "name": "Bộ Tư pháp", "kind": "RECIPIENT_KIND_MAIN"},
                 {"name": "Lưu: VT", "kind": "RECIPIENT_KIND_ARCHIVE"}]}}')
ID=$(jq -r .document.id <<<"$D") ETAG=$(jq -r .document.etag <<<"$D")
echo "   $ID"
echo "2. submit for review, to the director (thaodt.stp)"
ETAG=$(call thaodt.stp SubmitForReview '{"document_id": "'$ID'", "etag": "'$ETAG'",
  "reviewer_user_id": "'$LEADER'"}' | jq -r .document.etag)
echo "3. approve, naming the signer (lãnh đạo thaovm.stp)"
ETAG=$(call thaovm.stp ReviewDocument '{"document_id": "'$ID'", "etag": "'$ETAG'",
  "decision": "REVIEW_DECISION_APPROVE", "signer_user_id": "'$LEADER'"}' | jq -r .document.etag)
echo "4. sign (thaovm.stp)"
ETAG=$(call thaovm.stp SignDocument '{"document_id": "'$ID'", "etag": "'$ETAG'",
  "signer": {"user_id": "'$LEADER'", "full_name": "Võ Minh Thảo", "position": "Giám đốc",
  "mode": "SIGNING_MODE_DIRECT"}}' | jq -r .document.etag)
echo "5. issue: number and date (văn thư lanbt.stp)"
I=$(call lanbt.stp IssueDocument '{"document_id": "'$ID'", "etag": "'$ETAG'"}')
ETAG=$(jq -r .document.etag <<<"$I"); jq -c '.document | {numberNotation, promulgationDate}' <<<"$I"
echo "6. send: Sở Y tế over the bus, Bộ Tư pháp over the national axis (lanbt.stp)"
call lanbt.stp SendDocument '{"document_id": "'$ID'", "etag": "'$ETAG'"}' \
  | jq -c '[.document.recipients[] | select(.agencyCode) | {agencyCode, deliveryStatus}]'
sleep 8
echo "7. arrived at Sở Y tế (văn thư anpt.syt lists incoming)"
IN=$(call anpt.syt ListDocuments '{"agency_code": "'$SYT'", "direction": "DIRECTION_INCOMING"}' \
  | jq -c '.documents[0]')
IID=$(jq -r .id <<<"$IN") IETAG=$(jq -r .etag <<<"$IN"); jq -c '{id, incomingStatus, numberNotation}' <<<"$IN"
echo "8. accept into the incoming book (anpt.syt)"
IETAG=$(call anpt.syt AcceptDocument '{"document_id": "'$IID'", "etag": "'$IETAG'"}' | jq -r .document.etag)
echo "9. assign to a specialist (lãnh đạo lanpm.syt)"
IETAG=$(call lanpm.syt AssignDocument '{"document_id": "'$IID'", "etag": "'$IETAG'",
  "handler_user_id": "'$HANDLER'", "due_date": "2026-12-20"}' | jq -r .document.etag)
echo "10. start and complete (chuyên viên lanvt.syt)"
IETAG=$(call lanvt.syt StartProcessing '{"document_id": "'$IID'", "etag": "'$IETAG'"}' | jq -r .document.etag)
call lanvt.syt CompleteDocument '{"document_id": "'$IID'", "etag": "'$IETAG'",
  "result_note": "Đã cử cán bộ phối hợp."}' | jq -c '.document | {incomingStatus}'
sleep 3
echo "11. the sender sees each recipient's status (lanbt.stp)"
call lanbt.stp GetDocument '{"id": "'$ID'"}' \
  | jq -c '[.document.recipients[] | select(.agencyCode) | {agencyCode, deliveryStatus, lastIncomingStatus}]'
echo "12. the ministry's mailbox at the axis, and its answer: 03 accepted"
KEY="X-API-Key: ${NATIONAL_API_KEY:-lgsp-dev-key}"
BODY=$(curl -sf -H "$KEY" "$AXIS/api/v1/agencies/000.00.00.G15/packages?limit=100" \
  | jq -r --arg s "$STP" '[.packages[] | select(.sender == $s and .kind == "document")] | last | .body')
# The ministry's system answers with an edXML status (here written with the platform's codec).
python - "$BODY" <<'PY' | curl -sf -H "$KEY" -H "Content-Type: application/xml" --data-binary @- \
  "$AXIS/api/v1/statuses" | jq -c '{status_code, delivered_to}'
import sys
from datetime import datetime
from lgsp.workdays import PROVINCE_TZ
from services.documents import edxml
h = edxml.parse_package(sys.argv[1].encode()).header
sys.stdout.buffer.write(edxml.build_status(edxml.Status(
    response_for=edxml.ResponseFor(organ_id=h.from_.organ_id, code=str(h.code),
        promulgation_date=h.promulgation_info.promulgation_date, document_id=h.document_id),
    from_=edxml.Organization(organ_id="000.00.00.G15", organ_name="Bộ Tư pháp"),
    status_code=edxml.StatusCode.ACCEPTED, description="Đã tiếp nhận",
    timestamp=datetime.now(PROVINCE_TZ).replace(microsecond=0))))
PY
# The poller's next round brings it in: 5 s while the province exchanges, up to 30 s when quiet.
for _ in $(seq 20); do
  G15=$(call lanbt.stp GetDocument '{"id": "'$ID'"}' \
    | jq -c '[.document.recipients[] | select(.agencyCode == "000.00.00.G15") | {agencyCode, lastIncomingStatus}]')
  grep -q ACCEPTED <<<"$G15" && break
  sleep 2
done
echo "$G15"
echo "13. a paper letter registered by hand (văn thư anpt.syt)"
# A fixed request_id: run again, the same entry comes back (the same letter under a new id
# would be ALREADY_EXISTS: one arrival number per document).
call anpt.syt RegisterIncoming '{"request_id": "walkthrough-paper-1", "document": {"agency_code": "'$SYT'",
  "document_type_code": "CV", "number_notation": "45/UBND-VX",
  "subject": "Về việc tăng cường phòng chống dịch", "sender_agency_code": "000.00.61.H27",
  "sender_agency_name": "Ủy ban nhân dân phường Thành Sen", "promulgation_date": "2026-12-01"}}' \
  | jq -c '.document | {id, incomingStatus}'
echo "14. recall what was sent (văn thư lanbt.stp; each recipient's answer comes back as a status)"
ETAG=$(call lanbt.stp GetDocument '{"id": "'$ID'"}' | jq -r .document.etag)
call lanbt.stp RecallDocument '{"document_id": "'$ID'", "etag": "'$ETAG'",
  "reason": "Văn bản ban hành chưa đúng thẩm quyền"}' | jq -c '.document | {outgoingStatus}'
