"""The papers the citizen is handed, as PDF: the receipt and appointment slip and the apology
letter, laid out after the forms of Thông tư 01/2018/TT-VPCP (docs/dossiers.md, "What the
citizen holds").

Text is Vietnamese, NFC-normalised, in DejaVu Sans shipped with the service (fonts/, with its
licence): never a system font, so every machine prints the same glyphs, and fpdf2 embeds the
subset used (a FontFile2 in the PDF). The QR code (segno) holds the public lookup URL."""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from lgsp.workdays import PROVINCE_TZ
from services.dossiers.domain.deadlines import END_OF_DAY
from services.dossiers.domain.dossier import Dossier

FONTS = Path(__file__).parent / "fonts"
FONT = "DejaVuSans"
QUOC_HIEU = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
TIEU_NGU = "Độc lập - Tự do - Hạnh phúc"


@dataclass(frozen=True)
class Issuer:
    """Who the paper comes from: the receiving agency, the one above it (cơ quan chủ quản)
    and the place printed before the date."""

    name: str
    parent_name: str = ""
    place_name: str = ""


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def vn_date(d: date) -> str:
    return f"ngày {d.day:02d} tháng {d.month:02d} năm {d.year}"


def vn_moment(t: datetime) -> str:
    local = t.astimezone(PROVINCE_TZ)
    return f"{local.hour:02d} giờ {local.minute:02d} phút, {vn_date(local.date())}"


def vn_appointment(d: date) -> str:
    return f"{END_OF_DAY.hour:02d} giờ {END_OF_DAY.minute:02d} phút, {vn_date(d)}"


class _Paper(FPDF):
    """An A4 page with the fonts and the header every form shares."""

    def __init__(self, title: str) -> None:
        super().__init__(format="A4")
        self.set_margins(20, 15, 15)
        self.set_auto_page_break(True, 15)
        self.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
        self.set_title(nfc(title))
        self.set_creator("LGSP dossiers")
        self.add_page()

    def write_line(
        self, text: str, *, size: float = 11, bold: bool = False, align: str = "L"
    ) -> None:
        self.set_font(FONT, "B" if bold else "", size)
        self.multi_cell(0, size * 0.55, nfc(text), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def header_block(self, issuer: Issuer, unit: str, today: date) -> None:
        """Agency on the left, Quốc hiệu and tiêu ngữ on the right, then place and date."""
        left_w = 80.0
        right_x, right_w = self.l_margin + left_w, self.epw - left_w
        top = self.get_y()
        lines = [(issuer.parent_name.upper(), "")] if issuer.parent_name else []
        lines.append((unit.upper(), "B"))
        for text, style in lines:
            self.set_font(FONT, style, 10)
            self._cell_at(self.l_margin, left_w, 5, text)
        left_bottom = self.get_y()
        self.set_y(top)
        self.set_font(FONT, "B", 10)
        self._cell_at(right_x, right_w, 5, QUOC_HIEU)
        self.set_font(FONT, "B", 11)
        self._cell_at(right_x, right_w, 5.5, TIEU_NGU)
        text_w = self.get_string_width(TIEU_NGU)
        x0 = right_x + (right_w - text_w) / 2
        self.line(x0, self.get_y() + 0.5, x0 + text_w, self.get_y() + 0.5)
        self.set_y(max(left_bottom, self.get_y()) + 4)
        place = f"{issuer.place_name}, " if issuer.place_name else ""
        self.set_font(FONT, "", 10)
        self._cell_at(right_x, right_w, 5, place + vn_date(today))
        self.ln(5)

    def _cell_at(self, x: float, w: float, h: float, text: str, align: str = "C") -> None:
        """Centred lines in the column from x of width w; the cursor goes below them."""
        self.set_x(x)
        self.multi_cell(w, h, nfc(text), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def signatures(self, *blocks: tuple[str, str, str] | None) -> None:
        """Signature blocks side by side, each (title, how to sign, name under the space to
        sign) or None for an empty column."""
        self.ln(6)
        width = self.epw / len(blocks)
        y = self.get_y()
        for i, block in enumerate(blocks):
            if block is None:
                continue
            title, hint, name = block
            x = self.l_margin + i * width
            self.set_y(y)
            self.set_font(FONT, "B", 10)
            self._cell_at(x, width, 5, title.upper())
            self.set_font(FONT, "", 9)
            self._cell_at(x, width, 5, f"({hint})")
            if name:
                self.set_y(y + 32)
                self.set_font(FONT, "B", 10)
                self._cell_at(x, width, 5, name)
        self.set_y(y + 40)

    def qr(self, url: str, caption: str) -> None:
        """The QR code of `url` with a caption beside it."""
        png = io.BytesIO()
        segno.make(url, error="m").save(png, kind="png", scale=8, border=4)
        png.seek(0)
        size = 32.0
        if self.get_y() + size > self.h - self.b_margin:
            self.add_page()
        y = self.get_y()
        self.image(png, x=self.l_margin, y=y, w=size, h=size)
        self.set_y(y + 4)
        self.set_font(FONT, "", 9)
        self._cell_at(self.l_margin + size + 4, self.epw - size - 4, 4.5, caption, "L")
        self.set_y(y + size + 2)

    def to_bytes(self) -> bytes:
        return bytes(self.output())


def lookup_url(base: str, receipt_code: str) -> str:
    """The public lookup page, prefilled with the receipt code (the code's characters are
    digits, letters, dots and hyphens: nothing to escape)."""
    return f"{base.rstrip('/')}/tra-cuu?ma={receipt_code}"


def receipt_slip(d: Dossier, issuer: Issuer, *, lookup: str, receiver_name: str) -> bytes:
    """Giấy tiếp nhận hồ sơ và hẹn trả kết quả (Thông tư 01/2018/TT-VPCP, mẫu số 01)."""
    assert d.due_date is not None  # printed once accepted: the appointment is fixed then
    received = d.accept_time or d.submit_time
    pdf = _Paper("Giấy tiếp nhận hồ sơ và hẹn trả kết quả")
    pdf.header_block(issuer, f"{issuer.name}\nBộ phận tiếp nhận và trả kết quả", received.date())
    pdf.write_line("GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ", size=13, bold=True, align="C")
    pdf.write_line(f"Mã hồ sơ: {d.receipt_code}", size=11, bold=True, align="C")
    pdf.ln(3)
    a = d.applicant
    pdf.write_line(f"Bộ phận tiếp nhận và trả kết quả {issuer.name}")
    pdf.write_line(f"Tiếp nhận hồ sơ của: {a.organization_name or a.full_name}")
    if a.organization_name:
        pdf.write_line(f"Người đại diện: {a.full_name}")
    if a.address:
        pdf.write_line(f"Địa chỉ: {a.address}")
    contact = "; ".join(
        x for x in (a.phone and f"Số điện thoại: {a.phone}", a.email and f"Email: {a.email}") if x
    )
    if contact:
        pdf.write_line(contact)
    pdf.write_line(f"Nội dung yêu cầu giải quyết: {d.procedure_name}")
    pdf.ln(1)
    pdf.write_line("1. Thành phần hồ sơ nộp gồm:")
    _papers_table(pdf, d)
    pdf.write_line("2. Số lượng hồ sơ: 01 (bộ)")
    pdf.write_line(
        f"3. Thời gian giải quyết hồ sơ theo quy định là: {d.processing_days} ngày làm việc"
    )
    pdf.write_line(f"4. Thời gian nhận hồ sơ: {vn_moment(received)}")
    pdf.write_line(
        f"5. Thời gian trả kết quả giải quyết hồ sơ: {vn_appointment(d.due_date)}", bold=True
    )
    pdf.write_line(f"6. Nhận kết quả tại: Bộ phận tiếp nhận và trả kết quả {issuer.name}")
    pdf.signatures(
        ("Người nộp hồ sơ", "Ký và ghi rõ họ tên", a.full_name),
        ("Người tiếp nhận hồ sơ", "Ký và ghi rõ họ tên", receiver_name),
    )
    pdf.qr(
        lookup,
        "Quét mã để tra cứu tình trạng hồ sơ, hoặc vào trang "
        f"{lookup}\nMã xác minh: 4 số cuối của số định danh cá nhân hoặc số điện thoại "
        "của người nộp hồ sơ.",
    )
    return pdf.to_bytes()


def _papers_table(pdf: _Paper, d: Dossier) -> None:
    pdf.set_font(FONT, "", 10)
    widths = (12, pdf.epw - 12 - 44, 22, 22)
    with pdf.table(
        col_widths=widths, text_align=("CENTER", "LEFT", "CENTER", "CENTER"), line_height=5.5
    ) as table:
        table.row(["STT", "Tên giấy tờ", "Bản chính", "Bản sao"])
        for i, p in enumerate(d.papers, 1):
            table.row([str(i), nfc(p.name or p.paper_code), str(p.originals), str(p.copies)])
    pdf.ln(2)


def apology_letter(d: Dossier, issuer: Issuer, *, lookup: str, signer_title: str) -> bytes:
    """Phiếu xin lỗi và hẹn lại ngày trả kết quả (Thông tư 01/2018/TT-VPCP, mẫu số 04): the
    competent agency apologises, says why and gives the new appointment."""
    assert d.due_date and d.rescheduled_date and d.apology_time
    received = d.accept_time or d.submit_time
    pdf = _Paper("Phiếu xin lỗi và hẹn lại ngày trả kết quả")
    pdf.header_block(issuer, issuer.name, d.apology_time.astimezone(PROVINCE_TZ).date())
    pdf.write_line("PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ", size=13, bold=True, align="C")
    pdf.write_line(f"Mã hồ sơ: {d.receipt_code}", size=11, bold=True, align="C")
    pdf.ln(3)
    a = d.applicant
    pdf.write_line(
        f"Ngày {received.astimezone(PROVINCE_TZ):%d/%m/%Y}, {issuer.name} tiếp nhận hồ sơ "
        f"của: {a.organization_name or a.full_name}"
    )
    pdf.write_line(f"Nội dung yêu cầu giải quyết: {d.procedure_name}")
    pdf.write_line(f"Thời gian hẹn trả kết quả giải quyết hồ sơ: {vn_appointment(d.due_date)}")
    pdf.write_line(
        "Tuy nhiên đến nay, cơ quan chưa trả kết quả giải quyết hồ sơ của Ông/Bà đúng hẹn."
    )
    pdf.write_line(f"Lý do: {d.apology_reason}")
    pdf.write_line(
        "Sự chậm trễ này đã gây phiền hà cho Ông/Bà. Cơ quan xin lỗi Ông/Bà và hẹn lại thời "
        f"gian trả kết quả vào {vn_appointment(d.rescheduled_date)}.",
        bold=True,
    )
    pdf.write_line("Kính mong Ông/Bà thông cảm.")
    pdf.signatures(None, (signer_title, "Ký, ghi rõ họ tên và đóng dấu", ""))
    pdf.qr(lookup, f"Tra cứu tình trạng hồ sơ: {lookup}")
    return pdf.to_bytes()
