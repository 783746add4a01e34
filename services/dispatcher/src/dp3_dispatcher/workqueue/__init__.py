"""Python binding to cctools Work Queue (cffi over ``work_queue.h``, built at install).

::

    with Manager(port=0, name="dp3") as manager:
        task_id = manager.submit(Task("python3 render_task.py photo .", inputs=[...], outputs=[...]))
        result = manager.wait(timeout=5)

See :mod:`dp3_dispatcher.workqueue._manager` for the pitfalls of cctools 8.0 it handles.
"""

from dp3_dispatcher.workqueue._manager import (
    InputFile,
    Manager,
    OutputFile,
    Result,
    Stats,
    Task,
    TaskResult,
    WorkQueueError,
    result_text,
)
from dp3_dispatcher.workqueue._status import WorkerInfo, hostname_of, query_workers

__all__ = [
    "InputFile",
    "Manager",
    "OutputFile",
    "Result",
    "Stats",
    "Task",
    "TaskResult",
    "WorkQueueError",
    "WorkerInfo",
    "hostname_of",
    "query_workers",
    "result_text",
]
