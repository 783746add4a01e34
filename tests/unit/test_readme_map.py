"""The README's newcomer table points at files that exist, at most two per question (issue 16, item 6)."""

from __future__ import annotations

import re

from tests.conftest import REPO


def rows() -> list[tuple[str, list[str]]]:
    text = (REPO / "README.md").read_text()
    table = text[text.index("| question | answer in |") :].split("\n\n", 1)[0]
    found = []
    for line in table.splitlines()[2:]:
        question, answer = line.strip("|").split("|", 1)
        found.append((question.strip(), re.findall(r"`((?:libs|services|field)/[^`]+\.py)`", answer)))
    return found


def test_each_question_names_one_or_two_files_that_exist() -> None:
    table = rows()
    assert len(table) == 6
    for question, paths in table:
        assert 1 <= len(paths) <= 2, (question, paths)
        for path in paths:
            assert (REPO / path).is_file(), (question, path)
