"""Language detection reads a long message by its beginning (lingua's cost grows with
the text) and still tells the language apart."""

from __future__ import annotations

import pytest

from fte_core.language import _LINGUA_CHARS, _sample, detect_language

FRENCH = (
    "Bonjour, je voudrais savoir comment exporter mes projets vers un fichier et partager "
    "le tableau avec mon équipe, car nous changeons d'outil le mois prochain. "
)
SPANISH = (
    "Hola, quisiera saber cómo exportar mis proyectos a un archivo y compartir el tablero "
    "con mi equipo, porque cambiamos de herramienta el mes que viene. "
)


@pytest.mark.parametrize(("text", "code"), [(FRENCH * 12, "fr"), (SPANISH * 12, "es")])
def test_a_long_message_is_read_by_its_beginning_and_still_recognised(text: str, code: str) -> None:
    assert len(text) > 4 * _LINGUA_CHARS
    assert detect_language(text) == code


def test_the_sample_is_cut_at_a_space_within_the_limit() -> None:
    sample = _sample(FRENCH * 12)
    assert len(sample) <= _LINGUA_CHARS
    assert (FRENCH * 12).startswith(sample)
    assert (FRENCH * 12)[len(sample)] == " "
    assert _sample("court") == "court"
    assert _sample("x" * 1000) == "x" * _LINGUA_CHARS  # no space: a hard cut


def test_a_noun_heavy_bug_report_is_english_without_asking_lingua(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fte_core.language as language

    def no_lingua() -> None:
        raise AssertionError("lingua was asked")

    monkeypatch.setattr(language, "_get", no_lingua)
    report = (
        "Subject: Import from Jira Workspace: acme-design. Steps to reproduce: open the "
        "board, drag a card, reload the page. Browser: Firefox on Windows."
    )
    assert detect_language(report) == "en"
    # three English function words among many Spanish ones are not enough
    mixed = SPANISH + "the board to the"
    with pytest.raises(AssertionError, match="lingua was asked"):
        detect_language(mixed)
