"""SEARCH with the text keys accent-insensitive: "ha tinh" and "Hà Tĩnh" both find
"Hà Tĩnh" (lgsp/textfold.py, the folding ListMessages and the search service use). pymap
compares text with re.IGNORECASE only; here SUBJECT, FROM, TO, CC, BCC and HEADER compare the
folded decoded header values, BODY the folded decoded text parts and TEXT both. Every other
key is pymap's own criterion; NOT, OR and parenthesised sets are rebuilt so text keys inside
them fold too.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymap.interfaces.message import LoadedMessageInterface, MessageInterface
from pymap.parsing.specials import SearchKey
from pymap.search import SearchCriteria, SearchCriteriaSet, SearchParams

from lgsp.textfold import fold
from services.mail.domain.message import read_bodies

ADDRESS_KEYS = (b"BCC", b"CC", b"FROM", b"SUBJECT", b"TO")


def folded_criteria(keys: Iterable[SearchKey], params: SearchParams) -> SearchCriteriaSet:
    return _AllOf(keys, params)


def _criterion(key: SearchKey, params: SearchParams) -> SearchCriteria:
    name = key.value
    if key.inverse:
        return _Not(_criterion(key.not_inverse, params), params)
    if name == b"OR":
        left, right = key.filter_key_or
        return _Or(_criterion(left, params), _criterion(right, params), params)
    if name == b"KEYSET":
        return _AllOf(key.filter_key_set, params)
    if name in ADDRESS_KEYS:
        return _Text(params, key.filter_str, header=name.lower())
    if name == b"HEADER":
        header, value = key.filter_header
        return _Text(params, value, header=header.lower().encode("ascii", "replace"))
    if name in (b"BODY", b"TEXT"):
        return _Text(params, key.filter_str, body=True, headers=name == b"TEXT")
    return SearchCriteria.of(key, params)


class _AllOf(SearchCriteriaSet):
    def __init__(self, keys: Iterable[SearchKey], params: SearchParams) -> None:
        SearchCriteria.__init__(self, params)
        self.all_criteria = [_criterion(k, params) for k in keys]


class _Not(SearchCriteria):
    def __init__(self, inner: SearchCriteria, params: SearchParams) -> None:
        super().__init__(params)
        self.inner = inner

    def matches(self, seq: int, msg: MessageInterface, loaded: LoadedMessageInterface) -> bool:
        return not self.inner.matches(seq, msg, loaded)


class _Or(SearchCriteria):
    def __init__(self, left: SearchCriteria, right: SearchCriteria, params: SearchParams):
        super().__init__(params)
        self.left, self.right = left, right

    def matches(self, seq: int, msg: MessageInterface, loaded: LoadedMessageInterface) -> bool:
        return self.left.matches(seq, msg, loaded) or self.right.matches(seq, msg, loaded)


class _Text(SearchCriteria):
    def __init__(
        self,
        params: SearchParams,
        value: str,
        *,
        header: bytes = b"",
        body: bool = False,
        headers: bool = False,
    ) -> None:
        super().__init__(params)
        self.value = fold(value)
        self.header, self.body, self.headers = header, body, headers

    def matches(self, seq: int, msg: MessageInterface, loaded: LoadedMessageInterface) -> bool:
        if self.header:
            return any(self.value in fold(str(v)) for v in loaded.get_header(self.header))
        raw = bytes(loaded)
        text = " ".join(read_bodies(raw))
        if self.headers:
            text += " " + raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
            text += " " + " ".join(
                str(v) for n in ADDRESS_KEYS for v in loaded.get_header(n.lower())
            )
        return self.value in fold(text)
