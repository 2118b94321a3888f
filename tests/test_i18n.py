"""The report's Arabic: every English text has a translation, with the same values filled in."""
from __future__ import annotations

import json
import string

import pytest

from reliability import paths
from reliability.errors import ConfigurationError
from reliability.report import i18n


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_text_has_an_arabic_translation_with_the_same_values() -> None:
    assert set(i18n.EN) == set(i18n.AR)
    for key, english in i18n.EN.items():
        assert fields(i18n.AR[key]) == fields(english), key
        if key not in ("GO", "NO-GO", "INCONCLUSIVE", "prometheus", "page"):
            assert i18n.has_arabic(i18n.AR[key]), key


def test_values_inside_arabic_keep_their_own_order() -> None:
    text = i18n.texts("ar")["rollback"].format(candidate="v1.9.0", stable="v1.8.3")
    assert f"{i18n.LRI}v1.9.0{i18n.PDI}" in text and f"{i18n.LRI}v1.8.3{i18n.PDI}" in text
    assert i18n.texts("en")["rollback"].format(candidate="v1.9.0", stable="v1.8.3").startswith("Do not deploy v1.9.0.")


def test_every_heading_of_the_proof_notebook_is_translated() -> None:
    nb = json.loads(paths.PROOF_NOTEBOOK.read_text())
    headings = [line.lstrip("#").strip() for cell in nb["cells"] if cell["cell_type"] == "markdown"
                for line in "".join(cell["source"]).splitlines() if line.startswith("#")]
    assert len(headings) >= 10
    assert [h for h in headings if i18n.heading(h, "ar") is None] == []
    assert all(i18n.heading(h, "en") is None for h in headings)  # English keeps the notebook's own


def test_check_names_are_translated_and_the_r_check_keeps_its_figures() -> None:
    assert i18n.check_name("R > 0.98 for v1.9.0", "ar") == "R > 0.98 للإصدار v1.9.0"
    assert i18n.check_name("Regression tests", "ar") == "اختبارات الانحدار"
    assert i18n.check_name("Regression tests", "en") == "Regression tests"


def test_an_unknown_language_is_a_usage_error_naming_the_choices() -> None:
    with pytest.raises(ConfigurationError, match="'fr' is not a report language; choose one of en, ar"):
        i18n.texts("fr")
