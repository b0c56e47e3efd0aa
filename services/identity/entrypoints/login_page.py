"""The Vietnamese sign-in page and error page of the authorization-code flow."""

from __future__ import annotations

import base64
import hashlib
from html import escape

_STYLE = """
body{font-family:system-ui,"Segoe UI",Roboto,sans-serif;background:#f3f5f8;margin:0}
main{max-width:380px;margin:8vh auto;background:#fff;padding:2rem;border-radius:8px;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.25rem;color:#a50e0e;margin:0 0 .25rem}p.sub{color:#555;margin:0 0 1.5rem}
label{display:block;margin:.75rem 0 .25rem;font-weight:600}
input[type=text],input[type=password],input[type=email]{width:100%;padding:.6rem;box-sizing:border-box;
border:1px solid #ccc;border-radius:4px}
button{margin-top:1.25rem;width:100%;padding:.7rem;background:#a50e0e;color:#fff;border:0;
border-radius:4px;font-size:1rem}.err{background:#fdecea;color:#8a1c1c;padding:.6rem;
border-radius:4px}
"""


# The pages' one inline style, allowed by its hash: no other style or any script runs.
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()


def content_security_policy(form_target: str = "") -> str:
    """The pages' CSP: nothing but their own style; never framed (clickjacking); forms post
    to this provider only, plus the origin the sign-in then redirects to (browsers apply
    form-action to a form's redirects too)."""
    form_action = "'self'" + (f" {form_target}" if form_target else "")
    return (
        f"default-src 'none'; style-src '{STYLE_HASH}'; img-src 'self'; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )


# On every HTML page of identity (entrypoints.http.HtmlHardening adds what a page lacks).
HTML_HEADERS = {
    "Content-Security-Policy": content_security_policy(),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def login_page(action: str, hidden: dict[str, str], error: str = "", username: str = "") -> str:
    fields = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in hidden.items()
    )
    err = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Đăng nhập một lần — LGSP</title><style>{_STYLE}</style></head>
<body><main>
<h1>Đăng nhập hệ thống</h1>
<p class="sub">Nền tảng tích hợp, chia sẻ dữ liệu cấp tỉnh</p>
{err}
<form method="post" action="{escape(action)}">
{fields}
<label for="username">Tên đăng nhập</label>
<input type="text" id="username" name="username" value="{escape(username)}"
 autocomplete="username" required autofocus>
<label for="password">Mật khẩu</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<label for="totp">Mã xác thực (nếu tài khoản bật xác thực hai lớp)</label>
<input type="text" id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code">
<button type="submit">Đăng nhập</button>
</form>
</main></body></html>"""


def password_page(action: str, hidden: dict[str, str], error: str = "") -> str:
    """The UPDATE_PASSWORD required action: a temporary password was right; choose one."""
    fields = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in hidden.items()
    )
    err = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Đổi mật khẩu — LGSP</title><style>{_STYLE}</style></head>
<body><main>
<h1>Đổi mật khẩu</h1>
<p class="sub">Mật khẩu hiện tại là mật khẩu tạm thời. Vui lòng đặt mật khẩu mới để tiếp tục.</p>
{err}
<form method="post" action="{escape(action)}">
{fields}
<label for="new_password">Mật khẩu mới</label>
<input type="password" id="new_password" name="new_password" autocomplete="new-password" required>
<label for="confirm_password">Nhập lại mật khẩu mới</label>
<input type="password" id="confirm_password" name="confirm_password" autocomplete="new-password"
 required>
<button type="submit">Đổi mật khẩu và đăng nhập</button>
</form>
</main></body></html>"""


def totp_page(action: str, hidden: dict[str, str], secret: str, uri: str, error: str = "") -> str:
    """The CONFIGURE_TOTP required action: the secret to add to an authenticator app, and
    a first code from it."""
    fields = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in hidden.items()
    )
    err = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Cài đặt xác thực hai lớp — LGSP</title><style>{_STYLE}</style></head>
<body><main>
<h1>Cài đặt xác thực hai lớp</h1>
<p class="sub">Thêm khóa sau vào ứng dụng xác thực (Google Authenticator, Microsoft
Authenticator…), rồi nhập mã 6 chữ số ứng dụng hiển thị.</p>
<p><code>{escape(grouped)}</code></p>
<p class="sub"><small>{escape(uri)}</small></p>
{err}
<form method="post" action="{escape(action)}">
{fields}
<label for="totp">Mã xác thực</label>
<input type="text" id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code" required>
<button type="submit">Xác nhận và đăng nhập</button>
</form>
</main></body></html>"""


# VERIFY_PROFILE: what is wrong with each field, in Vietnamese.
PROFILE_ERRORS = {
    "lastName": "Họ và tên đệm không hợp lệ (tối đa 100 ký tự, không có ký tự điều khiển).",
    "firstName": "Vui lòng nhập tên (tối đa 100 ký tự, không có ký tự điều khiển).",
    "email": "Địa chỉ thư điện tử không hợp lệ.",
}


def profile_page(
    action: str, hidden: dict[str, str], values: dict[str, str], bad_field: str = ""
) -> str:
    """The VERIFY_PROFILE required action: the official confirms or corrects name and email."""
    fields = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in hidden.items()
    )
    message = PROFILE_ERRORS.get(bad_field, "Thông tin chưa hợp lệ." if bad_field else "")
    err = f'<p class="err" role="alert">{escape(message)}</p>' if message else ""

    def box(name: str, label: str, kind: str, complete: str) -> str:
        invalid = ' aria-invalid="true"' if name == bad_field else ""
        return (
            f'<label for="{name}">{label}</label>\n<input type="{kind}" id="{name}" '
            f'name="{name}" value="{escape(values.get(name, ""))}" autocomplete="{complete}"'
            f"{invalid} required>"
        )

    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Xác nhận thông tin cá nhân — LGSP</title><style>{_STYLE}</style></head>
<body><main>
<h1>Xác nhận thông tin cá nhân</h1>
<p class="sub">Vui lòng kiểm tra họ tên và địa chỉ thư điện tử của bạn, sửa nếu chưa đúng,
rồi xác nhận để tiếp tục.</p>
{err}
<form method="post" action="{escape(action)}">
{fields}
{box("lastName", "Họ và tên đệm", "text", "family-name")}
{box("firstName", "Tên", "text", "given-name")}
{box("email", "Thư điện tử", "email", "email")}
<button type="submit">Xác nhận và đăng nhập</button>
</form>
</main></body></html>"""


def logout_page(action: str) -> str:
    """Asks before ending the SSO session when the application sent no id_token_hint (a
    link on another site must not sign the official out of every application)."""
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Đăng xuất — LGSP</title>
<style>{_STYLE}</style></head><body><main>
<h1>Đăng xuất</h1><p class="sub">Bạn có muốn đăng xuất khỏi tất cả các ứng dụng?</p>
<form method="post" action="{escape(action)}">
<input type="hidden" name="confirm" value="1">
<button type="submit">Đăng xuất</button>
</form>
</main></body></html>"""


def error_page(message: str) -> str:
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Lỗi đăng nhập — LGSP</title>
<style>{_STYLE}</style></head><body><main>
<h1>Không thể đăng nhập</h1><p class="err" role="alert">{escape(message)}</p>
<p>Vui lòng quay lại ứng dụng và thử lại, hoặc liên hệ quản trị hệ thống.</p>
</main></body></html>"""


# What each refusal says to the official, in Vietnamese.
MESSAGES = {
    "form": (
        "Phiên đăng nhập đã hết hạn hoặc yêu cầu không hợp lệ. Vui lòng đăng nhập lại trên "
        "trang này."
    ),
    # Also a locked or disabled account: the page tells nobody which accounts exist.
    "Invalid user credentials": (
        "Tên đăng nhập hoặc mật khẩu không đúng (sau nhiều lần nhập sai, tài khoản bị tạm khóa "
        "15 phút)."
    ),
    "Invalid one-time code (totp)": "Mã xác thực hai lớp không đúng.",
    "Account is not fully set up": (
        "Tài khoản chưa hoàn tất thiết lập (đổi mật khẩu, cài đặt xác thực hai lớp hoặc xác "
        "minh thông tin). Vui lòng liên hệ quản trị hệ thống."
    ),
    "password mismatch": "Hai mật khẩu mới không khớp nhau.",
    "password policy": (
        "Mật khẩu mới phải dài từ 10 đến 128 ký tự, gồm ít nhất 3 trong 4 loại: chữ thường, "
        "chữ hoa, chữ số, ký hiệu; không chứa tên đăng nhập hay từ quá phổ biến."
    ),
    "Too many failed sign-ins from this address": (
        "Quá nhiều lần đăng nhập sai từ địa chỉ này. Vui lòng thử lại sau ít phút."
    ),
}
