"""HTML bodies made safe for the web client (nh3, the Python binding of Rust's ammonia: an
allow-list over html5ever, which parses the way browsers do).

What survives: the tags and attributes of ordinary mail formatting (paragraphs, tables,
lists, links, images, fonts); links only to http, https, mailto and tel, opening with
rel="noopener noreferrer"; inline styles limited to the typographic properties below (a
style attribute holding url(), expression(), @import or a CSS escape is dropped whole).
What goes: script, style, iframe, object, form, svg and math (with their content), every
event handler, javascript:/vbscript:/data: URLs, and **remote images**: an <img> keeps its
src only for cid: (a part of the same message); an http(s) or data: src is removed, not
rewritten, so opening a mail never tells its sender that and when it was read (tracking
pixels); the image's alt text stays. A web client that wants a "show images" button reads
the original from the raw message.
"""

from __future__ import annotations

import html as entities
import re

import nh3

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "cite", "code", "col",
    "colgroup", "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "ins", "li", "ol", "p", "pre", "q", "s", "small", "span",
    "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    "u", "ul",
}  # fmt: skip
# Removed with everything inside them (the rest lose only the tag, keeping their text).
DROPPED_WHOLE = {"script", "style", "svg", "math", "template", "iframe", "object", "noscript"}
COMMON = {"style", "title", "dir", "lang", "align"}
ATTRIBUTES = {
    "*": COMMON,
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "width", "bgcolor"},
    "td": {"colspan", "rowspan", "width", "valign", "bgcolor"},
    "th": {"colspan", "rowspan", "width", "valign", "bgcolor"},
    "col": {"span", "width"},
    "ol": {"start", "type"},
}
URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
STYLES = {
    "color", "background-color", "font-family", "font-size", "font-style", "font-weight",
    "text-align", "text-decoration", "text-indent", "line-height", "vertical-align",
    "white-space", "margin", "margin-top", "margin-bottom", "margin-left", "margin-right",
    "padding", "padding-top", "padding-bottom", "padding-left", "padding-right", "border",
    "border-collapse", "width", "height",
}  # fmt: skip
# In a kept style value: url() fetches, expression() runs script in old IE, escapes hide both.
HOSTILE_STYLE = re.compile(r"url\s*\(|expression\s*\(|\\|javascript:|@import", re.IGNORECASE)


def _filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not value.lower().startswith("cid:"):
        return None  # remote (or data:) image: removed, see the module docstring
    if attribute == "style" and HOSTILE_STYLE.search(value):
        return None
    return value


def sanitize(html: str) -> str:
    """`html` safe to put in the web client's page; "" stays ""."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=TAGS,
        clean_content_tags=DROPPED_WHOLE,
        attributes=ATTRIBUTES,
        attribute_filter=_filter,
        url_schemes=URL_SCHEMES,
        url_relative="deny",  # a mail has no base URL; relative links would hit the client
        filter_style_properties=STYLES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    ).strip()


BLOCK_END = re.compile(r"<\s*(?:br|/p|/div|/li|/tr|/h[1-6]|/table|/blockquote)\b[^>]*>", re.I)


def text_of(html: str) -> str:
    """A plain-text rendering of `html`, for the text/plain part of a message sent with an
    HTML body only (mail clients without HTML, and search, read that part)."""
    marked = BLOCK_END.sub("\n", html)
    text = entities.unescape(nh3.clean(marked, tags=set(), clean_content_tags=DROPPED_WHOLE))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
