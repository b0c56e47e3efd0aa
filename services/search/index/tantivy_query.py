"""The tantivy engine's queries: a plan (words, rights, filters) as one tantivy query."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import tantivy

from .base import (
    LATER_FIELDS,
    READERS,
    Caller,
    Plan,
    ValidFilter,
    hiding_terms,
    rights_terms,
)
from .errors import SearchInputError
from .query import And, Node, Not, Notation, Or, Phrase, Term, adjacent_phrases, word_runs
from .tantivy_schema import (
    ADJACENCY_BOOST,
    ALL_EXACT,
    ALL_TEXT,
    EXACT_BOOST,
    NOTATION_BOOST,
    READER_KEYS,
    SEP,
    SUBJECT_BOOST,
)
from .tantivy_scoring import Scale, scaled

MAX_COMPOUND_TERMS = 1024  # more terms than this: the plain filters
_EPOCH = date(1970, 1, 1)  # issued_day counts days from it (base.engine_fields)


class TantivyQueries:
    """The query half of TantivyIndex: it needs `schema` and the option flags."""

    schema: tantivy.Schema
    reader_keys: bool
    later: bool
    plain_plan: bool
    adjacency: bool
    exact_words: bool
    subject_phrases: bool

    def _phrase(self, words: tuple[str, ...], sc: Scale = None) -> tantivy.Query:
        """The words in this order, anywhere in the text (tantivy intersects the words'
        postings, rarest first, and reads positions only where all of them occur)."""
        q = tantivy.Query.phrase_query(self.schema, ALL_TEXT, list(words))
        return scaled(q, sc, ALL_TEXT, words)

    def subject_phrase(self, words: tuple[str, ...], sc: Scale = None) -> tantivy.Query:
        """The words in this order in the subject (its own field, positions indexed)."""
        q = tantivy.Query.phrase_query(self.schema, "subject", list(words))
        return scaled(q, sc, "subject", words)

    def _text(self, node: Node, sc: Scale = None, bonus: bool = True) -> tantivy.Query:
        """`node` as a query; `bonus=False` (under NOT, where nothing is scored) leaves the
        subject bonuses out."""
        Q, s, Occur = tantivy.Query, self.schema, tantivy.Occur
        if isinstance(node, Term):
            word = scaled(Q.term_query(s, ALL_TEXT, node.token), sc, ALL_TEXT, (node.token,))
            if not (node.exact and self.later and self.exact_words):
                return word
            exact = scaled(Q.term_query(s, ALL_EXACT, node.exact), sc, ALL_EXACT, (node.exact,))
            return Q.boolean_query(
                [(Occur.Must, word), (Occur.Should, Q.boost_query(exact, EXACT_BOOST))]
            )
        if isinstance(node, Phrase):
            phrase = self._phrase(node.tokens, sc)
            if not (bonus and self.subject_phrases and (sc is None or sc.pairs)):
                return phrase
            return Q.boolean_query([(Occur.Must, phrase), self._subject_bonus(node.tokens, sc)])
        if isinstance(node, Notation):
            key = scaled(Q.term_query(s, "number_key", node.key), sc, "number_key", (node.key,))
            exact = Q.boost_query(key, NOTATION_BOOST)
            cited = (
                self._phrase(node.tokens, sc)
                if len(node.tokens) > 1
                else self._text(Term(node.tokens[0]), sc)
            )
            return Q.boolean_query([(Occur.Should, exact), (Occur.Should, cited)])
        if isinstance(node, And):
            return self._all_of(node.items, node.items, sc, bonus)
        if isinstance(node, Or):
            return Q.boolean_query([(Occur.Should, self._text(i, sc, bonus)) for i in node.items])
        assert isinstance(node, Not)
        return Q.boolean_query(
            [(Occur.Must, Q.all_query()), (Occur.MustNot, self._text(node.item, sc, False))]
        )

    def _subject_bonus(self, words: tuple[str, ...], sc: Scale) -> tuple[Any, tantivy.Query]:
        """An optional phrase on the subject (query.subject_runs), scored on the rescoring
        window as the adjacency phrases are (TantivyIndex._rescore)."""
        q = tantivy.Query.boost_query(self.subject_phrase(words, sc), SUBJECT_BOOST)
        return tantivy.Occur.Should, q

    def _all_of(
        self, items: tuple[Node, ...], typed: tuple[Node, ...], sc: Scale, bonus: bool = True
    ) -> tantivy.Query:
        """Every item, and the bonuses of the words as typed (`typed`: the AND's items
        before its exclusions were moved out): each pair of words typed together that
        stands together in the text (an optional phrase of two), each run of them that
        stands in the subject. Bonuses score, never filter."""
        Q, Occur = tantivy.Query, tantivy.Occur
        clauses = [
            (Occur.MustNot, self._text(i.item, sc, False)) if isinstance(i, Not)
            else (Occur.Must, self._text(i, sc, bonus))
            for i in items
        ]  # fmt: skip
        if all(o == Occur.MustNot for o, _ in clauses):
            clauses.append((Occur.Must, Q.all_query()))
        if bonus and self.adjacency and (sc is None or sc.pairs):
            clauses += [
                (Occur.Should, Q.boost_query(self._phrase(p, sc), ADJACENCY_BOOST))
                for p in adjacent_phrases(typed)
            ]
        if bonus and self.subject_phrases and (sc is None or sc.pairs):
            clauses += [self._subject_bonus(r, sc) for r in word_runs(typed)]
        return Q.boolean_query(clauses)

    def _rights(self, caller: Caller) -> list[tuple[Any, tantivy.Query]]:
        """One term set on the readers field: (the caller's agency or public) at the
        confidentiality levels the caller may read."""
        Q = tantivy.Query
        terms = Q.term_set_query(self.schema, READERS, rights_terms(caller))
        return [(tantivy.Occur.Must, Q.const_score_query(terms, 0.0)), self._copies(caller)]

    def _copies(self, caller: Caller) -> tuple[Any, tantivy.Query]:
        """Leaves out the copies the caller finds as another copy (base.COPY_PREFIX)."""
        # A union of term queries, not a term set: a term set fills a bitset of the whole
        # segment even when its terms have no postings (0.8 against 0.05 ms at 60k documents).
        Q, Should = tantivy.Query, tantivy.Occur.Should
        hidden = [(Should, Q.term_query(self.schema, READERS, t)) for t in hiding_terms(caller)]
        return (tantivy.Occur.MustNot, Q.boolean_query(hidden))

    def _access(
        self, caller: Caller, filters: tuple[ValidFilter, ...], compound: bool = True
    ) -> list[tuple[Any, tantivy.Query]]:
        """The rights rule and the filters as clauses to intersect with the query.

        With READER_KEYS (and `compound`), the rights, the first doc_type filter and the
        first bounded issued_date range become one term set of compound keys: the caller's
        readers terms × the types × the years the range touches — one short posting list of
        the documents passing all three. The range is kept as well unless it covers whole
        years (the years are then exact). Negated filters and the others stay as they are.
        Same matches as the plain clauses (they score 0 either way)."""
        Q, Must = tantivy.Query, tantivy.Occur.Must
        rights = rights_terms(caller)

        def plain() -> list[tuple[Any, tantivy.Query]]:
            return [*self._rights(caller), *(self._filter(f) for f in filters)]

        if not (compound and self.reader_keys):
            return plain()
        types = next((f for f in filters if f.field == "doc_type" and not f.negate), None)
        days = next(
            (f for f in filters if f.field == "issued_day" and not f.negate
             and f.lo is not None and f.hi is not None),
            None,
        )  # fmt: skip
        span = (days.lo or 0, days.hi or 0) if days is not None else None
        years = _years(*span) if span is not None else None
        if types is None and years is None:
            return plain()
        values = types.values if types is not None else ()
        if any(SEP in v for v in (*rights, *values)):
            return plain()
        if len(rights) * max(len(values), 1) * len(years or [""]) > MAX_COMPOUND_TERMS:
            return plain()
        if types is not None and years is not None:
            keys = [f"{r}{SEP}ty{SEP}{t}{SEP}{y}" for r in rights for t in values for y in years]
        elif types is not None:
            keys = [f"{r}{SEP}t{SEP}{t}" for r in rights for t in values]
        else:
            keys = [f"{r}{SEP}y{SEP}{y}" for r in rights for y in years or ()]
        exact_years = span is not None and years is not None and _whole_years(*span)
        rest = [f for f in filters if f is not types and not (f is days and exact_years)]
        keyed = Q.const_score_query(Q.term_set_query(self.schema, READER_KEYS, keys), 0.0)
        return [(Must, keyed), self._copies(caller), *(self._filter(f) for f in rest)]

    def _filter(self, f: ValidFilter) -> tuple[Any, tantivy.Query]:
        Q, s = tantivy.Query, self.schema
        if f.boolean is not None:
            q = Q.term_query(s, f.field, f.boolean)
        elif f.values:
            q = Q.term_set_query(s, f.field, list(f.values))
        else:
            q = Q.range_query(s, f.field, tantivy.FieldType.Integer, f.lo, f.hi)
        if f.negate:
            return (tantivy.Occur.MustNot, q)
        return (tantivy.Occur.Must, Q.const_score_query(q, 0.0))

    def build_query(self, plan: Plan, plain: bool = False, sc: Scale = None) -> tantivy.Query:
        """`plan` as one tantivy query. `plain=True`: the plan before the compound keys and
        the hoisted exclusions (same matches, scores and order; the tests compare them)."""
        Q = tantivy.Query
        if not self.later:
            asked = [f.field for f in plan.filters] + [f.field for f in plan.facets]
            if late := next((f for f in asked if f in LATER_FIELDS), None):
                raise SearchInputError(
                    "filters" if late not in (f.field for f in plan.facets) else "facets",
                    f"{late}: this index was built before the field; an operator must rebuild"
                    " it (lgsp search reindex)",
                )
        filters = self._access(plan.caller, plan.filters, compound=not plain)
        if plan.key_bound is not None and plan.sort_key is not None:
            lo, hi = (None, plan.key_bound) if plan.descending else (plan.key_bound, None)
            rng = Q.range_query(self.schema, plan.sort_key, tantivy.FieldType.Integer, lo, hi)
            filters.append((tantivy.Occur.Must, Q.const_score_query(rng, 0.0)))
        if isinstance(plan.node, Or):
            # (A or B) and F as (A and F) or (B and F): tantivy's union walks every posting of
            # its branches whatever follows, while each branch's intersection skips to the
            # filtered documents. Same matches, same scores (filters score 0); measured at
            # 1M documents: 73 -> 41 ms for the benchmark's filtered query.
            return Q.boolean_query(
                [(tantivy.Occur.Should, self._and(b, filters, plain, sc)) for b in plan.node.items]
            )
        return self._and(plan.node, filters, plain, sc)

    def _and(
        self,
        node: Node | None,
        filters: list[tuple[Any, tantivy.Query]],
        plain: bool,
        sc: Scale = None,
    ) -> tantivy.Query:
        """`node` AND the filters. The words' own exclusions (`a b -"c d"`) are moved out
        beside the filters, so that they are tested only on documents that pass the filters
        too, not on every document holding the positive words (an excluded phrase reads
        positions at each: 12 -> 9 ms for `chuyen doi so -"du lich"` at 1M). The positive
        words stay one nested intersection, so every score is summed in the same order as
        before, to the bit."""
        Q, Must, MustNot = tantivy.Query, tantivy.Occur.Must, tantivy.Occur.MustNot
        if node is None:
            return Q.boolean_query([(Must, Q.all_query()), *filters])
        if not plain and isinstance(node, And):
            positive = tuple(i for i in node.items if not isinstance(i, Not))
            excluded = [i.item for i in node.items if isinstance(i, Not)]
            if positive and excluded:
                # The bonuses as typed: `a -b c` has none, though a and c are now neighbours.
                words = self._all_of(positive, node.items, sc)
                return Q.boolean_query(
                    [
                        (Must, words),
                        *((MustNot, self._text(e, sc, False)) for e in excluded),
                        *filters,
                    ]
                )
        return Q.boolean_query([(Must, self._text(node, sc)), *filters])


def _years(lo: int, hi: int) -> list[str] | None:
    """The years (as the `year` field writes them) that the issued_day range [lo, hi] touches;
    None if the range is empty, outside the calendar or too long to list."""
    try:
        a, b = _EPOCH + timedelta(days=lo), _EPOCH + timedelta(days=hi)
    except OverflowError:
        return None
    if a > b or b.year - a.year >= MAX_COMPOUND_TERMS:
        return None
    return [str(y) for y in range(a.year, b.year + 1)]


def _whole_years(lo: int, hi: int) -> bool:
    """Whether [lo, hi] (issued_day, within the calendar) runs from a 1 January to a 31
    December: then the years alone are the range."""
    a, b = _EPOCH + timedelta(days=lo), _EPOCH + timedelta(days=hi)
    return (a.month, a.day, b.month, b.day) == (1, 1, 12, 31)
