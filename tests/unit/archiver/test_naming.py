from __future__ import annotations

from dp3_archiver.naming import StoredFiles, candidate_names, capture_times_in_id, collision_name, name_of_sidecar

SHA = "3f2a9c1b7e0d" + "a" * 52


def test_collision_name_keeps_the_extension_and_differs_from_the_id() -> None:
    assert collision_name("A-B_1_DSC00372.JPG", SHA) == "A-B_1_DSC00372~3f2a9c1b7e0d.JPG"
    assert collision_name("A-B_1_README", SHA) == "A-B_1_README~3f2a9c1b7e0d"
    names = candidate_names("A-B_1_DSC.JPG", SHA)
    assert names[0] == "A-B_1_DSC.JPG" and len(set(names)) == 3


def test_artifacts_follow_the_stored_name() -> None:
    files = StoredFiles(collision_name("A-B_1_DSC.JPG", SHA))
    assert files.thumbnail == "A-B_1_DSC~3f2a9c1b7e0d_THUMBNAIL.jpg"
    assert files.web == "A-B_1_DSC~3f2a9c1b7e0d_WEB.jpg"
    assert files.sidecar == "A-B_1_DSC~3f2a9c1b7e0d.JPG.json"


def test_capture_time_candidates_in_an_id() -> None:
    assert 1355517208 in capture_times_in_id("JAEGER-NICHOLAS_1355517208_DSC_0001.JPG")
    assert capture_times_in_id("A_B_12_x_34_y.jpg") == [12, 34]


def test_sidecar_names() -> None:
    assert name_of_sidecar("X.JPG.json") == "X.JPG"
    assert name_of_sidecar(".dp3-store") is None
    assert name_of_sidecar("X.JPG") is None
