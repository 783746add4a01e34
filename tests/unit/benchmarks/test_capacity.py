"""The capacity model's arithmetic: ceilings, the predicted rate, the bottleneck, the feed ratio."""

from __future__ import annotations

import math

import pytest

from benchmarks.capacity import CoreGroup, capacity, describe

HEAD_MS = {"dp3-archiver": 26.7, "rabbitmq (erlang)": 11.6, "nx-27017": 10.6, "dp3-dispatcher": 9.9}  # 58.8
WORKER_MS = {"work_queue_worker (+ render tasks)": 74.9}


def test_each_ceiling_is_cores_times_1000_over_the_ms_per_photo() -> None:
    model = capacity(CoreGroup("head core 0", 1, HEAD_MS), CoreGroup("worker core 1", 2, WORKER_MS))
    assert model.ceilings == {
        "head core 0": pytest.approx(1000 / 58.8),
        "worker core 1": pytest.approx(2 * 1000 / 74.9),
    }


def test_the_prediction_is_the_least_ceiling_and_names_its_group_and_heaviest_program() -> None:
    model = capacity(
        CoreGroup("head", 1, {"dp3-archiver": 26.7, "dp3-scanner": 8.0}), CoreGroup("worker", 1, WORKER_MS)
    )
    assert model.rate == pytest.approx(1000 / 74.9)
    assert model.bottleneck.name == "worker"
    assert model.bottleneck_program == "work_queue_worker (+ render tasks)"

    heavy_head = capacity(
        CoreGroup("head", 1, {"dp3-archiver": 60.0, "dp3-scanner": 30.0}), CoreGroup("worker", 1, WORKER_MS)
    )
    assert heavy_head.rate == pytest.approx(1000 / 90.0)
    assert heavy_head.bottleneck.name == "head"
    assert heavy_head.bottleneck_program == "dp3-archiver"


def test_moving_an_archiver_from_the_head_to_the_worker_core_moves_the_ceilings() -> None:
    one = capacity(CoreGroup("head", 1, {"dp3-archiver": 26.7, "other": 53.8}), CoreGroup("worker", 1, WORKER_MS))
    moved = capacity(
        CoreGroup("head", 1, {"dp3-archiver": 13.35, "other": 53.8}),
        CoreGroup("worker", 1, {**WORKER_MS, "dp3-archiver (added)": 13.35}),
    )
    assert one.bottleneck.name == "head"
    assert moved.bottleneck.name == "worker"
    assert moved.ceilings["head"] > one.ceilings["head"]
    assert moved.ceilings["worker"] < one.ceilings["worker"]


def test_worker_cores_one_head_core_feeds_is_the_ratio_of_their_costs() -> None:
    model = capacity(CoreGroup("head", 1, {"all": 20.0}), CoreGroup("worker", 1, {"render": 80.0}))
    assert model.worker_cores_per_head_core == pytest.approx(4.0)
    # The ratio is per photo, whatever the cores in each group.
    wider = capacity(CoreGroup("head", 2, {"all": 20.0}), CoreGroup("worker", 8, {"render": 80.0}))
    assert wider.worker_cores_per_head_core == pytest.approx(4.0)


def test_a_tie_names_the_head_node_and_a_group_that_spent_nothing_has_no_ceiling() -> None:
    tie = capacity(CoreGroup("head", 1, {"a": 50.0}), CoreGroup("worker", 1, {"b": 50.0}))
    assert tie.bottleneck.name == "head"
    idle_worker = capacity(CoreGroup("head", 1, {"a": 50.0}), CoreGroup("worker", 1, {}))
    assert idle_worker.ceilings["worker"] == math.inf
    assert idle_worker.rate == pytest.approx(20.0)
    assert idle_worker.worker_cores_per_head_core == 0.0


@pytest.mark.parametrize(
    ("head", "worker", "message"),
    [
        (CoreGroup("head", 0, {"a": 1.0}), CoreGroup("worker", 1, {"b": 1.0}), "head: 0 cores"),
        (CoreGroup("head", 1, {}), CoreGroup("worker", 1, {"b": 0.0}), "no CPU per photo"),
    ],
)
def test_refused_with_the_reason(head: CoreGroup, worker: CoreGroup, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        capacity(head, worker)


def test_described_with_the_prediction_beside_the_measured_rate() -> None:
    model = capacity(
        CoreGroup("head core 0", 1, {"dp3-archiver": 50.0, "x": 30.0}), CoreGroup("worker core 1", 1, {"r": 75.0})
    )
    lines = describe(model, measured_rate=11.25)
    assert lines[0].startswith("capacity model from this run's CPU per photo")
    assert "ceiling  12.50 photos/s  <- bottleneck; heaviest: dp3-archiver 50.0 ms" in lines[1]
    assert "ceiling  13.33 photos/s" in lines[2] and "bottleneck" not in lines[2]
    assert "predicted  12.50 photos/s (head core 0), measured  11.25 photos/s: measured / predicted 0.90x" in lines[3]
    assert "one head core feeds 0.94 worker cores (75.0 / 80.0 ms per photo)" in lines[4]
