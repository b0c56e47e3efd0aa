"""The population, business registry, portal and payment mocks as processes: their APIs,
their errors, and the fault controls."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.national.mockproc import MockProcess

VERIFY = "/api/v1/citizens/verify"
MINH = {"id_number": "026093660531", "full_name": "Nguyễn Đức Minh", "birth_date": "1993-08-07"}


def test_population_verify_and_household(population: MockProcess) -> None:
    with population.api() as api:
        ok = api.post(VERIFY, json={**MINH, "full_name": "  nguyễn đức MINH "}).json()
        assert ok == {
            "id_number": MINH["id_number"],
            "match": True,
            "fields": {"full_name": True, "birth_date": True},
        }
        # Diacritics matter, and the stored values are never disclosed.
        wrong = api.post(VERIFY, json={**MINH, "full_name": "Nguyen Duc Minh"}).json()
        assert wrong["match"] is False and wrong["fields"]["full_name"] is False
        assert "Nguyễn" not in str(wrong)
        hh = api.get(f"/api/v1/citizens/{MINH['id_number']}/household").json()
        assert hh["household_id"] == "1500000001"
        assert [m["relation_to_head"] for m in hh["members"]] == ["Chủ hộ", "Vợ", "Con"]
        missing = api.post(VERIFY, json={**MINH, "id_number": "026093660532"})
        assert missing.status_code == 404
        assert missing.json() == {"code": "CITIZEN_NOT_FOUND", "message": "Không tìm thấy công dân"}


def test_population_rejects_bad_input(population: MockProcess) -> None:
    with population.api() as api:
        for body, field in [
            ({**MINH, "id_number": "12345"}, "id_number"),
            ({**MINH, "id_number": "003093660531"}, "id_number"),  # no province 003
            ({**MINH, "birth_date": "07/08/1993"}, "birth_date"),
            ({**MINH, "full_name": ""}, "full_name"),
        ]:
            resp = api.post(VERIFY, json=body)
            assert resp.status_code == 400, body
            assert resp.json()["field"] == field
        resp = api.post(VERIFY, content=b"{not json", headers={"Content-Type": "application/json"})
        assert (resp.status_code, resp.json()["field"]) == (400, "body")
    anonymous = httpx.post(f"{population.url}{VERIFY}", json=MINH)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "UNAUTHORIZED"
    wrong_key = httpx.post(f"{population.url}{VERIFY}", json=MINH, headers={"X-API-Key": "x"})
    assert wrong_key.status_code == 401


def test_business_registry(business_registry: MockProcess) -> None:
    with business_registry.api() as api:
        ent = api.get("/api/v1/enterprises/5858229469").json()
        assert ent["name"] == "Công ty TNHH Thủy sản Hòa Phát" and ent["is_branch"] is False
        branch = api.get("/api/v1/enterprises/4799319980-001").json()
        assert branch["parent_tax_code"] == "4799319980"
        for bad in ("5858229468", "4799319980001", "58582294", "4799319980-000"):
            resp = api.get(f"/api/v1/enterprises/{bad}")
            assert resp.status_code == 400, bad
            assert resp.json()["code"] == "INVALID_TAX_CODE" and resp.json()["field"] == "tax_code"
        resp = api.get("/api/v1/enterprises/0100109106")  # valid, not in the generated set
        assert resp.status_code == 404 and resp.json()["code"] == "ENTERPRISE_NOT_FOUND"


def test_portal_handover_and_status(public_service_portal: MockProcess) -> None:
    with public_service_portal.api() as api:
        pending = api.get("/api/v1/handover", params={"province_code": "H27"}).json()["dossiers"]
        assert len(pending) == 2 and all(d["agency_code"].endswith(".H27") for d in pending)
        first = pending[0]
        assert first["status"] == 1 and first["applicant"]["identity_number"]
        code = first["portal_code"]
        receipt = "000.00.03.H27-250701-0001"
        ack = api.post(f"/api/v1/handover/{code}/ack", json={"receipt_code": receipt}).json()
        assert ack["receipt_code"] == receipt and ack["already_acked"] is False
        again = api.post(f"/api/v1/handover/{code}/ack", json={"receipt_code": receipt}).json()
        assert again["already_acked"] is True
        other = api.post(f"/api/v1/handover/{code}/ack", json={"receipt_code": "X-1"})
        assert other.status_code == 409
        left = api.get("/api/v1/handover", params={"province_code": "H27"}).json()["dossiers"]
        assert [d["portal_code"] for d in left] == [pending[1]["portal_code"]]

        def status(n: object, at: str, **extra: object) -> httpx.Response:
            body = {"receipt_code": receipt, "status": n, "updated_at": at, **extra}
            return api.post("/api/v1/statuses", json=body)

        assert status(2, "2025-07-01T09:00:00+07:00").status_code == 200
        assert status(2, "2025-07-01T09:00:00+07:00").json()["duplicate"] is True
        for bad, field in [(11, "status"), ("4", "status"), (4, "updated_at")]:
            resp = status(
                bad, "2025-07-01T10:00:00" if field == "updated_at" else "2025-07-01T10:00:00+07:00"
            )
            assert (resp.status_code, resp.json()["field"]) == (400, field)
        assert status(5, "2025-07-02T09:00:00+07:00").json()["field"] == "reason"
        stale = status(4, "2025-07-01T08:00:00+07:00")
        assert stale.status_code == 409 and stale.json()["code"] == "STALE_STATUS"
        assert status(4, "2025-07-02T09:00:00+07:00").status_code == 200
        known = api.get(f"/api/v1/dossiers/{receipt}").json()
        assert known["status"] == 4 and known["status_name"] == "Đang xử lý"
        assert [h["status"] for h in known["history"]] == [2, 4]
        # A counter dossier: the portal learns of it from its first status.
        counter = status(
            1,
            "2025-07-03T08:00:00+07:00",
            receipt_code="000.00.03.H27-250703-0009",
            agency_code="000.00.03.H27",
            procedure_code="1.001193",
        )
        assert counter.status_code == 200 and counter.json()["portal_code"] is None


def test_payment_flow_and_idempotency(payment: MockProcess) -> None:
    body = {
        "amount_vnd": 50_000,
        "receipt_code": "000.00.03.H27-250701-0001",
        "payer": {"full_name": "Nguyễn Đức Minh"},
        "description": "Lệ phí cấp bản sao",
    }
    with payment.api() as api:
        created = api.post("/api/v1/payments", json=body, headers={"Idempotency-Key": "k1"})
        assert created.status_code == 201
        p = created.json()
        assert p["status"] == "PENDING" and p["pay_url"].endswith(f"/pay/{p['payment_id']}")
        replay = api.post("/api/v1/payments", json=body, headers={"Idempotency-Key": "k1"})
        assert replay.status_code == 200 and replay.json()["payment_id"] == p["payment_id"]
        assert replay.headers["Idempotent-Replayed"] == "true"
        reuse = api.post(
            "/api/v1/payments",
            json={**body, "amount_vnd": 60_000},
            headers={"Idempotency-Key": "k1"},
        )
        assert reuse.status_code == 409 and reuse.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
        early = api.post(f"/api/v1/payments/{p['payment_id']}/confirm")
        assert early.status_code == 409 and early.json()["code"] == "PAYMENT_NOT_PAID"
        page = httpx.get(p["pay_url"])
        assert "50.000 đ" in page.text
        paid = httpx.post(p["pay_url"]).json()  # the citizen pays: no API key
        assert paid["status"] == "PAID" and paid["transaction_ref"]
        confirmed = api.post(f"/api/v1/payments/{p['payment_id']}/confirm").json()
        assert confirmed["status"] == "CONFIRMED"
        assert api.get(f"/api/v1/payments/{p['payment_id']}").json()["status"] == "CONFIRMED"
        for bad, field in [
            (0, "amount_vnd"),
            (-5, "amount_vnd"),
            (1.5, "amount_vnd"),
            ("5", "amount_vnd"),
        ]:
            resp = api.post("/api/v1/payments", json={**body, field: bad})
            assert (resp.status_code, resp.json()["field"]) == (400, field)
        assert api.get("/api/v1/payments/PAYNOPE").status_code == 404


def test_fault_controls(population: MockProcess) -> None:
    with population.api() as api:
        population.faults(rate_limit=1, rate_burst=1)
        assert api.post(VERIFY, json=MINH).status_code == 200
        limited = api.post(VERIFY, json=MINH)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        population.faults(fail_next=1)
        assert api.post(VERIFY, json=MINH).status_code == 503
        assert api.post(VERIFY, json=MINH).status_code == 200
        population.faults(down=True)
        down = api.post(VERIFY, json=MINH)
        assert down.status_code == 503 and down.json()["code"] == "SERVICE_DOWN"
        assert httpx.get(f"{population.url}/healthz").status_code == 503
        population.faults(latency_ms=300)
        resp = api.post(VERIFY, json=MINH)
        assert resp.status_code == 200 and resp.elapsed.total_seconds() >= 0.3
        bad = httpx.post(f"{population.url}/_faults", json={"error_rate": 2})
        assert bad.status_code == 400
        bad = httpx.post(f"{population.url}/_faults", json={"nonsense": 1})
        assert bad.status_code == 400 and "unknown fault" in bad.json()["message"]
    assert population.calls() == 6


def test_faults_from_the_command_line(mock_factory: Callable[..., MockProcess]) -> None:
    mock = mock_factory("business_registry", "--down")
    with mock.api() as api:
        assert api.get("/api/v1/enterprises/5858229469").status_code == 503
    assert httpx.get(f"{mock.url}/_faults").json()["down"] is True


def test_the_citizens_payment_pages_are_vietnamese_and_escaped(payment: MockProcess) -> None:
    body = {
        "amount_vnd": 1_250_000,
        "receipt_code": "000.00.03.H27-250701-0002",
        "payer": {"full_name": "Trần Văn <b>An</b>"},
        "description": "Lệ phí <script>alert(1)</script>",
    }
    browser = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}
    with payment.api() as api:
        p = api.post("/api/v1/payments", json=body).json()
        page = httpx.get(p["pay_url"], headers=browser)
        assert "Trạng thái: Chờ thanh toán" in page.text and "PENDING" not in page.text
        assert "1.250.000 đ" in page.text and "<button>" in page.text
        assert "<script>" not in page.text and "&lt;script&gt;" in page.text
        paid = httpx.post(p["pay_url"], headers=browser)
        assert paid.status_code == 200 and paid.headers["content-type"].startswith("text/html")
        assert "Thanh toán thành công" in paid.text and "Đã thanh toán" in paid.text
        assert "Mã giao dịch: FT" in paid.text and "<script>" not in paid.text
        again = httpx.post(p["pay_url"], headers=browser)
        assert "Khoản này đã được thanh toán" in again.text
        api.post(f"/api/v1/payments/{p['payment_id']}/confirm").raise_for_status()
        confirmed = httpx.get(p["pay_url"], headers=browser).text
        assert "Đã đối soát" in confirmed and "<button>" not in confirmed
        # A voided payment: the form answers 410 with a page saying why.
        q = api.post("/api/v1/payments", json={**body, "receipt_code": "000.00.03.H27-250701-0003"})
        api.post(f"/api/v1/payments/{q.json()['payment_id']}/cancel").raise_for_status()
        void = httpx.post(q.json()["pay_url"], headers=browser)
        assert void.status_code == 410 and "Yêu cầu thanh toán đã bị hủy" in void.text
        assert "Đã hủy" in httpx.get(q.json()["pay_url"], headers=browser).text
        # An API caller still gets JSON; an unknown payment is a page for a browser.
        assert httpx.post(q.json()["pay_url"]).json()["code"] == "PAYMENT_CANCELLED"
        unknown = httpx.get(f"{payment.url}/pay/PAY%3Cx%3E", headers=browser)
        assert unknown.status_code == 404 and "<x>" not in unknown.text
