"""How many photos go into each render task. Pure: counts in, batch sizes out.

Starting ``python3`` and importing Pillow on a worker costs more (about
110 ms here) than rendering a 12-megapixel JPEG at reduced scale (about
40 ms), so one photo per task caps the pipeline far below the render rate.
A task may therefore carry several photos (``render_task.py --batch``).

The rule keeps single photos fast and backlogs cheap:

* a worker is free (fewer tasks out than workers): submit now, splitting what
  waits evenly over the free workers, so an idle system renders a lone photo
  at once and a burst spreads over every worker;
* no worker is free: keep photos back until a full batch has gathered; the
  rest leave as soon as a task comes back and frees a worker.
"""

from __future__ import annotations


def batch_sizes(waiting: int, tasks_out: int, workers: int, batch_max: int) -> list[int]:
    """Sizes of the tasks to submit now for ``waiting`` photos; what they leave stays waiting.

    ``workers`` is how many tasks can run at once (at least 1 is assumed, so a
    pool still starting up gets its first task); ``tasks_out`` how many are
    submitted and not back yet.
    """
    if waiting < 0 or tasks_out < 0 or batch_max < 1:
        raise ValueError(f"bad counts: waiting={waiting} tasks_out={tasks_out} batch_max={batch_max}")
    sizes: list[int] = []
    free = max(workers, 1) - tasks_out
    while waiting > 0:
        if free > 0:
            size = min(batch_max, -(-waiting // free))  # ceil: spread evenly over the free workers
            free -= 1
        elif waiting >= batch_max:
            size = batch_max
        else:
            break
        sizes.append(size)
        waiting -= size
    return sizes
