"""The search box's language, parsed here and never handed raw to an engine.

    cải cách hành chính          words, all required (AND)
    "cải cách hành chính"        a phrase: the words in this order
    a OR b, a AND b, NOT a, -a   operators (upper case), -word / -"phrase" exclude
    (a OR b) c                   grouping
    28/2018/QĐ-TTg               a number and notation: exact match on that field, boosted

Matching folds case and diacritics. Anything that does not parse degrades to plain words
(an unbalanced quote or parenthesis, a dangling operator); a query that is too long, has
too many words, or has nothing searchable at all (`*:*`, emoji, punctuation) is refused,
with a clear message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from . import text as tx
from .abbreviations import ABBREVIATIONS, EXPANSIONS, LONGEST
from .errors import SearchInputError

MAX_QUERY_CHARS = 1000
MAX_CLAUSES = 64
MAX_DEPTH = 8
MAX_PAIRS = 8  # adjacency pairs per AND (each is one phrase clause)
MAX_RUNS = 8  # subject bonuses per query (each is one phrase clause on the subject)

# Number and notation as Nghị định 30/2020 writes them: "123/QĐ-UBND", "28/2018/QĐ-TTg".
NOTATION = re.compile(r"^\d+/(?:\d{4}/)?[^\W\d_][\w.]*(?:-[\w.]+)*$")


@dataclass(frozen=True, slots=True)
class Term:
    token: str  # folded
    # As typed, lowercased, when typed with diacritics ("số"): an exact match ranks above a
    # folded one (sở, sơ). "" when typed without them.
    exact: str = ""


@dataclass(frozen=True, slots=True)
class Phrase:
    tokens: tuple[str, ...]  # folded, at least two


@dataclass(frozen=True, slots=True)
class Notation:
    key: str  # the whole number and notation, folded: "28/2018/qd-ttg"
    tokens: tuple[str, ...]  # its words, for documents that cite it in their text


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Term | Phrase | Notation | And | Or | Not

_OPS = {"AND", "OR", "NOT", "&&", "||"}


def _lex(text: str) -> list[tuple[str, str]]:
    """(kind, value) with kind in word, phrase, op, lparen, rparen, neg."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == '"':
            j = text.find('"', i + 1)
            if j < 0:  # unbalanced: the rest is plain words
                i += 1
                continue
            out.append(("phrase", text[i + 1 : j]))
            i = j + 1
        elif c == "(":
            out.append(("lparen", c))
            i += 1
        elif c == ")":
            out.append(("rparen", c))
            i += 1
        elif (
            c == "-" and i + 1 < n and not text[i + 1].isspace() and (i == 0 or text[i - 1] in " (")
        ):
            out.append(("neg", c))
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '"()':
                j += 1
            word = text[i:j]
            out.append(
                ("op", word.replace("&&", "AND").replace("||", "OR"))
                if word in _OPS
                else ("word", word)
            )
            i = j
    return out


class _Parser:
    def __init__(self, toks: list[tuple[str, str]]) -> None:
        self.toks = toks
        self.i = 0
        self.leaves = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def parse_or(self, depth: int) -> Node | None:
        items = [self.parse_and(depth)]
        while (t := self.peek()) is not None and t == ("op", "OR"):
            self.i += 1
            items.append(self.parse_and(depth))
        kept = tuple(x for x in items if x is not None)
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else Or(kept)

    def parse_and(self, depth: int) -> Node | None:
        items: list[Node] = []
        while (t := self.peek()) is not None:
            if t == ("op", "OR") or (t[0] == "rparen" and depth > 0):
                break
            if t[0] == "rparen":  # unbalanced: ignore
                self.i += 1
                continue
            if t == ("op", "AND"):
                self.i += 1
                continue
            node = self.parse_unary(depth)
            if node is not None:
                items.append(node)
        if not items:
            return None
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_unary(self, depth: int) -> Node | None:
        t = self.peek()
        if t is not None and (t[0] == "neg" or t == ("op", "NOT")):
            self.i += 1
            nxt = self.peek()
            if nxt is None or nxt in (("op", "AND"), ("op", "OR")) or nxt[0] == "rparen":
                return None  # dangling NOT: dropped
            inner = self.parse_unary(depth)
            if inner is None:
                return None
            return inner.item if isinstance(inner, Not) else Not(inner)
        return self.parse_primary(depth)

    def parse_primary(self, depth: int) -> Node | None:
        t = self.peek()
        if t is None:
            return None
        self.i += 1
        kind, value = t
        if kind == "lparen":
            if depth >= MAX_DEPTH:  # too deep: the parenthesis is ignored
                return None
            inner = self.parse_or(depth + 1)
            if (t2 := self.peek()) is not None and t2[0] == "rparen":
                self.i += 1
            return inner
        if kind == "phrase":
            return self.leaf(value, quoted=True)
        if kind == "word":
            return self.leaf(value, quoted=False)
        return None  # a stray operator

    def leaf(self, value: str, quoted: bool) -> Node | None:
        value = value.strip()
        if not quoted and NOTATION.match(value):
            node: Node | None = Notation(tx.fold(value), tuple(tx.tokens(value)))
        else:
            words = tx.typed_tokens(value)
            if not words:
                return None  # punctuation only: nothing to match
            node = Term(*words[0]) if len(words) == 1 else Phrase(tuple(w for w, _ in words))
        self.leaves += 1
        if self.leaves > MAX_CLAUSES:
            raise SearchInputError("query", f"more than {MAX_CLAUSES} words or phrases")
        return node


def parse(text: str) -> Node | None:
    """The query tree of `text`; None when it is empty (match every document).

    A query that is not empty but holds nothing to match (`*:*`, emoji, punctuation, a lone
    `-` or operator) is refused: answering it with every document would hide the mistake
    behind a plausible page of results."""
    if len(text) > MAX_QUERY_CHARS:
        raise SearchInputError("query", f"longer than {MAX_QUERY_CHARS} characters")
    cleaned = tx.clean(text)
    node = _expand(_simplify(_Parser(_lex(cleaned)).parse_or(0)))
    if node is None and text.strip():
        raise SearchInputError(
            "query",
            "nothing searchable: give at least one word or number (symbols, punctuation and"
            " operators alone match nothing); leave the query empty to list everything",
        )
    return node


def _simplify(node: Node | None) -> Node | None:
    """Flatten nested And/Or; a query of exclusions only still means "all but these"."""
    if isinstance(node, And | Or):
        items: list[Node] = []
        for item in node.items:
            s = _simplify(item)
            if s is None:
                continue
            items.extend(s.items if isinstance(s, And | Or) and type(s) is type(node) else (s,))
        if not items:
            return None
        return items[0] if len(items) == 1 else type(node)(tuple(items))
    if isinstance(node, Not):
        inner = _simplify(node.item)
        return None if inner is None else Not(inner)
    return node


def _expand(node: Node | None) -> Node | None:
    """Abbreviations both ways (abbreviations.py): a word that is one also matches its
    expansion as a phrase; words (a run of unquoted ones, or a quoted phrase) that spell an
    expansion also match its abbreviation. Either side alone finds the document."""
    if isinstance(node, Term) and node.token in EXPANSIONS:
        return Or((node, Phrase(EXPANSIONS[node.token])))
    if isinstance(node, Phrase) and node.tokens in ABBREVIATIONS:
        return Or((node, Term(ABBREVIATIONS[node.tokens])))
    if isinstance(node, Not):
        inner = _expand(node.item)
        return None if inner is None else Not(inner)
    if isinstance(node, Or):
        return Or(tuple(x for i in node.items if (x := _expand(i)) is not None))
    if isinstance(node, And):
        return _expand_and(node.items)
    return node


def _expand_and(items: tuple[Node, ...]) -> Node:
    out: list[Node] = []
    i = 0
    while i < len(items):
        run = _expansion_at(items, i)
        if run:
            words = items[i : i + run]
            tokens = tuple(w.token for w in words if isinstance(w, Term))
            out.append(Or((And(words), Term(ABBREVIATIONS[tokens]))))
            i += run
        else:
            x = _expand(items[i])
            if x is not None:
                out.append(x)
            i += 1
    return out[0] if len(out) == 1 else And(tuple(out))


def _expansion_at(items: tuple[Node, ...], i: int) -> int:
    """The length of the longest run of unquoted words from `i` spelling an expansion."""
    for n in range(min(LONGEST, len(items) - i), 1, -1):
        run = items[i : i + n]
        if all(isinstance(w, Term) for w in run):
            if tuple(w.token for w in run if isinstance(w, Term)) in ABBREVIATIONS:
                return n
    return 0


def adjacent_phrases(items: tuple[Node, ...]) -> list[tuple[str, ...]]:
    """The words typed next to each other, unquoted, among an AND's items, as the phrases
    that earn a bonus where they stand together (Vietnamese words are several syllables):
    each pair, and each run of three or more whole: `chuyen doi so` -> (chuyen, doi),
    (doi, so), (chuyen, doi, so). A quoted phrase, an operator or an exclusion between two
    words breaks them (word_runs)."""
    pairs = []
    for a, b in pairwise(items):
        if isinstance(a, Term) and isinstance(b, Term) and a.token != b.token:
            pairs.append((a.token, b.token))
    runs = [r for r in word_runs(items) if len(r) > 2]
    return list(dict.fromkeys([*pairs[:MAX_PAIRS], *runs]))


def word_runs(items: tuple[Node, ...]) -> list[tuple[str, ...]]:
    """The runs of two or more words typed next to each other, unquoted, among an AND's
    items: `ke hoach -nam chuyen doi so` -> (ke, hoach), (chuyen, doi, so). A quoted
    phrase, an operator or an exclusion ends a run."""
    out: dict[tuple[str, ...], None] = {}
    run: list[str] = []
    for item in (*items, None):
        if isinstance(item, Term):
            run.append(item.token)
            continue
        if len(run) > 1:
            out[tuple(run)] = None
        run = []
    return list(out)[:MAX_RUNS]


def _scored(
    node: Node | None, of_and: Callable[[tuple[Node, ...]], list[tuple[str, ...]]], quoted: bool
) -> list[tuple[str, ...]]:
    """`of_and` of every AND a hit may match (not under NOT), and each quoted phrase if
    `quoted`: the phrases a bonus is scored for, each once, in query order."""
    out: dict[tuple[str, ...], None] = {}

    def walk(n: Node) -> None:
        if quoted and isinstance(n, Phrase):
            out[n.tokens] = None
        elif isinstance(n, And):
            out.update(dict.fromkeys(of_and(n.items)))
        if isinstance(n, And | Or):
            for item in n.items:
                walk(item)

    if node is not None:
        walk(node)
    return list(out)


def all_adjacent_phrases(node: Node | None) -> list[tuple[str, ...]]:
    """Every adjacency phrase (adjacent_phrases) of the ANDs a hit may match: an OR
    branch's phrase can reward a hit of the other branch."""
    return _scored(node, adjacent_phrases, quoted=False)


def subject_runs(node: Node | None) -> list[tuple[str, ...]]:
    """Every word run (word_runs) and quoted phrase a hit may match (not under NOT). A
    document whose subject holds one is about it: both engines add an optional phrase
    clause on the subject for each (SUBJECT_BOOST), which scores and never filters."""
    return _scored(node, word_runs, quoted=True)[:MAX_RUNS]


def positive_terms(
    node: Node | None,
) -> tuple[frozenset[str], tuple[tuple[str, ...], ...]]:
    """The terms and phrases a hit may match (not under NOT), for highlighting."""
    terms: set[str] = set()
    phrases: list[tuple[str, ...]] = []

    def walk(n: Node) -> None:
        if isinstance(n, Term):
            terms.add(n.token)
        elif isinstance(n, Phrase):
            phrases.append(n.tokens)
        elif isinstance(n, Notation):
            if len(n.tokens) > 1:
                phrases.append(n.tokens)
            else:
                terms.update(n.tokens)
        elif isinstance(n, And | Or):
            for item in n.items:
                walk(item)

    if node is not None:
        walk(node)
    return frozenset(terms), tuple(phrases)
