"""The offline default embedder and the word tokeniser shared by lexical retrieval.

HashingEmbedder is NOT a semantic model. It is a lexical feature-hashing vectoriser (the
"hashing trick"): it knows that "password" and "passwords" share character 4-grams, not
that "sign in" means "log in". It exists so that a fresh machine with no model download
and no API key still gets a deterministic, fast vector half for hybrid search; any
litellm embedding model (adapters.embedding.litellm) replaces it with real semantics.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import snowballstemmer  # type: ignore[import-untyped]  # no stubs published

from fte_core.errors import ValidationError

_STOPWORD_TEXT = """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just let me more most my myself no nor not of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    yours yourself yourselves hi hello please thanks thank dear get got want need
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_SNOWBALL = snowballstemmer.stemmer("english")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


@lru_cache(maxsize=65_536)
def _stem(word: str) -> str:
    """The Snowball English stemmer, the one PostgreSQL's 'english' text search uses, so
    lexical matching here and in the database agree ("expires", "expired" -> "expir")."""
    return str(_SNOWBALL.stemWord(word))


def words(text: str) -> list[str]:
    """NFKC, case-folded, stemmed words with stopwords removed."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    found: list[str] = []
    for match in _WORD.finditer(folded):
        word = match.group().split("'", 1)[0]
        if word and word not in STOPWORDS:
            found.append(_stem(word))
    return found


_UNIGRAM_WEIGHT = 1.0
_BIGRAM_WEIGHT = 0.7
_CHARGRAM_WEIGHT = 0.3


@lru_cache(maxsize=262_144)
def _bucket(feature: str, dimension: int) -> tuple[int, float]:
    """Stable across processes and machines (blake2b, not hash()): the stored vectors must
    stay comparable with query vectors computed after a restart."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    sign = 1.0 if value >> 63 else -1.0
    return value % dimension, sign


def features(text: str) -> Counter[str]:
    """Feature name -> raw count. Prefixes keep the three feature families apart."""
    tokens = words(text)
    counts: Counter[str] = Counter()
    for token in tokens:
        counts["w:" + token] += 1
        padded = f"<{token}>"
        for start in range(max(1, len(padded) - 3)):
            counts["c:" + padded[start : start + 4]] += 1
    for left, right in itertools.pairwise(tokens):
        counts[f"b:{left} {right}"] += 1
    return counts


_FAMILY_WEIGHT = {"w": _UNIGRAM_WEIGHT, "b": _BIGRAM_WEIGHT, "c": _CHARGRAM_WEIGHT}


def hashing_vector(text: str, dimension: int) -> list[float]:
    vector = [0.0] * dimension
    for feature, count in features(text).items():
        index, sign = _bucket(feature, dimension)
        vector[index] += sign * _FAMILY_WEIGHT[feature[0]] * (1.0 + math.log(count))
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:
        return vector
    return [v / norm for v in vector]


class HashingEmbedder:
    """Offline, deterministic lexical embedder (see the module docstring for what it is
    and is not): word unigrams, word bigrams and character 4-grams of words, hashed with
    blake2b and a sign hash into `dimension` buckets, sublinear tf (1 + ln tf), L2-normed.
    A text with no words (only stopwords or punctuation) maps to the zero vector."""

    def __init__(self, dimension: int = 384) -> None:
        if dimension < 8:
            raise ValidationError("dimension", "must be at least 8")
        self._dimension = dimension

    @property
    def name(self) -> str:
        # The version changes whenever the features do, so stored vectors get re-embedded.
        return f"hashing2-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [hashing_vector(text, self._dimension) for text in texts]
