from __future__ import annotations

import math
import subprocess
import sys

from fte_core.embedding import HashingEmbedder, hashing_vector, words


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_vectors_are_unit_length_with_the_configured_dimension() -> None:
    embedder = HashingEmbedder(dimension=128)
    assert (embedder.name, embedder.dimension) == ("hashing2-128", 128)
    (vector,) = await embedder.embed(["Reset your Tasklane password"])
    assert len(vector) == 128
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0)


async def test_stopword_only_text_is_the_zero_vector() -> None:
    (vector,) = await HashingEmbedder().embed(["what is it to you?"])
    assert not any(vector)


async def test_overlapping_texts_are_closer_than_unrelated_ones() -> None:
    embedder = HashingEmbedder()
    query, near, far = await embedder.embed(
        [
            "how do I reset my password",
            "To reset a forgotten password open the sign-in page.",
            "Install the Slack integration and choose a channel.",
        ]
    )
    assert _cosine(query, near) > 0.2
    assert _cosine(query, near) > _cosine(query, far) + 0.15


def test_inflections_share_features() -> None:
    assert words("Passwords resetting invited") == ["password", "reset", "invit"]
    assert words("expires expired expiring") == ["expir"] * 3
    a = hashing_vector("passwords", 384)
    b = hashing_vector("password", 384)
    assert _cosine(a, b) > 0.99


def test_vectors_are_stable_across_processes() -> None:
    code = (
        "from fte_core.embedding import hashing_vector; print(hashing_vector('sso saml okta', 64))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert outputs.pop().strip() == str(hashing_vector("sso saml okta", 64))
