"""Which embedder the `fte rules` commands score `similar_to` rules with.

A threshold belongs to one embedder, so the commands must use the one the service uses:
MiniLM (the semantic model `make install` puts in .fte/models) unless told otherwise;
`hashing` is the offline lexical vectoriser the service falls back to without MiniLM.
"""

from __future__ import annotations

import argparse

from fte_core.embedding import HashingEmbedder
from fte_core.errors import RuleError
from fte_core.ports import Embedder

CHOICES = ("minilm", "hashing")


def add_arguments(parser: argparse.ArgumentParser, *, several: bool = False) -> None:
    choices = (*CHOICES, "all") if several else CHOICES
    default = "all" if several else "minilm"
    parser.add_argument(
        "--embedder",
        choices=choices,
        default=default,
        help=f"embedder for similar_to rules (default: {default})",
    )
    parser.add_argument(
        "--models", default=".fte/models", help="model directory (default: .fte/models)"
    )


def embedder_for(name: str, models: str) -> Embedder:
    if name == "hashing":
        return HashingEmbedder()
    from adapters.embedding.minilm import MiniLMEmbedder, runtime_available
    from adapters.embedding.minilm_build import installed

    if not (installed(models) and runtime_available()):
        raise RuleError(
            f"the MiniLM embedder is not installed in {models!r}: run `fte model install` "
            "(make install does), or pass --embedder hashing"
        )
    return MiniLMEmbedder(models)


def embedders_for(args: argparse.Namespace) -> list[Embedder]:
    names = CHOICES if args.embedder == "all" else (args.embedder,)
    return [embedder_for(name, args.models) for name in names]
