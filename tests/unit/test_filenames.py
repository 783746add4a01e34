"""Names are bytes: escaping is reversible and one-to-one, every derived name fits NAME_MAX, ids stay unique."""

from __future__ import annotations

import base64
import os
import unicodedata
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dp3 import filenames, layout
from dp3.events import BASE_ID_MAX, ID_MAX, JournalEntry, Status, disambiguated_id, make_photo_id, path_fields
from dp3.files import temp_path_for
from dp3_archiver.naming import candidate_names

# Any name a Linux file system takes: 1..255 bytes, no "/" and no NUL, not "." or "..".
names = (
    st.binary(min_size=1, max_size=filenames.NAME_MAX)
    .map(lambda raw: raw.replace(b"/", b"_").replace(b"\0", b"_"))
    .filter(lambda raw: raw not in (b".", b".."))
)
multibyte = st.text(alphabet=st.sampled_from("éßЖ中😀\u0301A%"), min_size=60, max_size=130).map(str.encode)
any_name = st.one_of(names, multibyte.filter(lambda raw: 0 < len(raw) <= filenames.NAME_MAX))


def os_name(raw: bytes) -> str:
    return os.fsdecode(raw)


@given(st.binary(max_size=600))
def test_escape_is_reversible_for_any_bytes(raw: bytes) -> None:
    assert filenames.unescape(filenames.escape(raw)) == raw


@given(st.binary(max_size=300))
def test_escaped_names_are_clean_text(raw: bytes) -> None:
    shown = filenames.escape(raw)
    shown.encode("utf-8")  # no lone surrogates: JSON, SQLite and MongoDB take it
    assert not any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in shown)


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_different_names_never_escape_alike(first: bytes, second: bytes) -> None:
    if first != second:
        assert filenames.escape(first) != filenames.escape(second)


@given(st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters="%")))
def test_plain_utf8_names_are_their_own_escaped_form(name: str) -> None:
    if not any(char in filenames._BIDI_CONTROLS for char in name):
        assert filenames.escape(name.encode()) == name


def test_examples_of_the_escaped_form() -> None:
    assert filenames.escape(b"caf\xe9.jpg") == "caf%E9.jpg"
    assert filenames.escape(b"two\nlines.jpg") == "two%0Alines.jpg"
    assert filenames.escape(b"100%.jpg") == "100%.jpg"
    assert filenames.escape(b"%41.jpg") == "%2541.jpg"  # not mistaken for the escaped "A.jpg"
    assert filenames.escape(b'-n "x" (1).JPG') == '-n "x" (1).JPG'
    assert filenames.readable(b"caf\xe9.jpg") == "café.jpg"


@given(any_name, st.integers(min_value=40, max_value=255))
def test_fit_stays_within_the_limit_and_cuts_no_character(raw: bytes, limit: int) -> None:
    name = filenames.escape(raw)
    fitted = filenames.fit(name, limit)
    assert len(fitted.encode()) <= limit
    assert fitted == name or fitted.startswith(name[: len(fitted) - 40][:1])  # a head of the name
    fitted.encode("utf-8")  # whole characters only
    assert filenames.fit(name, limit) == fitted  # stable


@given(st.lists(any_name, min_size=2, max_size=8, unique=True))
@settings(max_examples=200)
def test_fitted_names_stay_unique(raws: list[bytes]) -> None:
    fitted = {filenames.fit(filenames.escape(raw), 100) for raw in raws}
    assert len(fitted) == len(raws)


def test_a_cut_never_leaves_half_an_escape() -> None:
    name = filenames.escape(b"a" * 90 + b"\xe9" * 60 + b".JPG")
    fitted = filenames.fit(name, 120)
    head = fitted.split(filenames.SHORTENED_MARK)[0]
    assert head.endswith(("%E9", "a"))


@given(any_name, any_name, st.integers(min_value=0, max_value=2**40))
@settings(max_examples=300)
def test_every_name_derived_from_an_id_fits_name_max(owner: bytes, basename: bytes, capture: int) -> None:
    photo_id = make_photo_id(os_name(owner), capture, os_name(basename))
    assert len(photo_id.encode()) <= BASE_ID_MAX
    sha = "ab" * 32
    for name in (photo_id, disambiguated_id(photo_id, sha), disambiguated_id(photo_id, sha, 64)):
        assert len(name.encode()) <= ID_MAX
        for stored in candidate_names(name, sha):
            assert len(stored.encode()) <= layout.STORED_NAME_MAX
            for derived in (layout.thumbnail_name(stored), layout.web_name(stored), layout.sidecar_name(stored)):
                assert len(derived.encode()) <= filenames.NAME_MAX
            assert len(os.fsencode(temp_path_for(Path("/s") / stored).name)) <= filenames.NAME_MAX


def test_ids_of_the_common_case_keep_the_seed_shape() -> None:
    assert make_photo_id("JAEGER-NICHOLAS", 1355517208, "DSC00372.JPG") == "JAEGER-NICHOLAS_1355517208_DSC00372.JPG"
    assert disambiguated_id("A_1_DSC.JPG", "3f2a9c1b7e0d" + "0" * 52) == "A_1_DSC~3f2a9c1b7e0d.JPG"


def test_a_long_name_keeps_its_extension_and_a_hash_of_the_whole() -> None:
    long_id = make_photo_id("ANNA-SMITH", 1, "x" * 250 + ".JPG")
    assert long_id.endswith(".JPG") and filenames.SHORTENED_MARK in long_id
    assert long_id != make_photo_id("ANNA-SMITH", 1, "x" * 249 + "y.JPG")


@given(any_name, any_name)
@settings(max_examples=200)
def test_different_owner_and_name_pairs_give_different_ids(first: bytes, second: bytes) -> None:
    if first != second:
        assert make_photo_id("A", 1, os_name(first)) != make_photo_id("A", 1, os_name(second))
        assert make_photo_id(os_name(first), 1, "x.jpg") != make_photo_id(os_name(second), 1, "x.jpg")


@given(st.lists(any_name, min_size=1, max_size=3))
def test_an_event_keeps_the_original_path_byte_exact(parts: list[bytes]) -> None:
    fs_path = os.fsdecode(b"/inbox/" + b"/".join(parts))
    entry = JournalEntry(id="x", status=Status.DETECTED, datetime=0, **path_fields(fs_path))
    again = JournalEntry.from_json(entry.to_json())
    assert os.fsencode(again.fs_path) == os.fsencode(fs_path)
    assert again.path == filenames.escape(os.fsencode(fs_path))
    if entry.path_bytes is not None:
        assert base64.b64decode(entry.path_bytes) == os.fsencode(fs_path)
    else:
        assert entry.path == fs_path  # plain names change nothing on the wire


def test_an_entry_without_path_bytes_means_its_path() -> None:
    entry = JournalEntry.from_json(b'{"id": "x", "status": "Detected", "datetime": 0, "path": "/inbox/A/caf%E9.jpg"}')
    assert entry.fs_path == "/inbox/A/caf%E9.jpg"
