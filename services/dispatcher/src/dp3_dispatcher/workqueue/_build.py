"""cffi build script for the Work Queue binding (API mode, compiled at install).

cctools ships only a static C library and headers for Work Queue, no Python
module (PyPI's ``work_queue`` and ``cctools`` are empty placeholders). This
script compiles ``dp3_dispatcher.workqueue._wq``, a small extension exposing the part of
``work_queue.h`` the dispatcher uses. API mode, not ABI mode, because the
compiler then checks every declaration below against the real header, and
calls release the GIL, so a long ``work_queue_wait`` does not stall other
Python threads.

``libwork_queue.a`` is linked whole-archive: it and ``libdttools.a`` refer to
each other, and only the first is needed in full.
"""

from __future__ import annotations

import os

from cffi import FFI  # type: ignore[import-untyped]

CCTOOLS_INCLUDE = os.environ.get("DP3_CCTOOLS_INCLUDE", "/usr/include/cctools")
CCTOOLS_LIB = os.environ.get("DP3_CCTOOLS_LIB", "/usr/lib")

CDEF = """
typedef uint64_t timestamp_t;  /* microseconds */
typedef int... time_t;

typedef enum { WORK_QUEUE_INPUT, WORK_QUEUE_OUTPUT, ... } work_queue_file_type_t;
typedef enum { WORK_QUEUE_NOCACHE, WORK_QUEUE_CACHE, ... } work_queue_file_flags_t;
typedef enum { WORK_QUEUE_RESULT_SUCCESS, ... } work_queue_result_t;
typedef enum { WORK_QUEUE_TASK_UNKNOWN, ... } work_queue_task_state_t;

struct work_queue_task {
    char *tag;
    char *command_line;
    char *output;
    int taskid;
    int return_status;
    work_queue_result_t result;
    char *host;
    char *hostname;
    int max_retries;
    int try_count;
    timestamp_t time_when_submitted;
    timestamp_t time_when_done;
    timestamp_t time_when_commit_start;
    timestamp_t time_when_commit_end;
    timestamp_t time_when_retrieval;
    timestamp_t time_workers_execute_last;
    ...;
};

struct work_queue_stats {
    int workers_connected;
    int workers_init;
    int workers_idle;
    int workers_busy;
    int workers_joined;
    int workers_removed;
    int workers_blocked;
    int workers_lost;
    int tasks_waiting;
    int tasks_on_workers;
    int tasks_running;
    int tasks_with_results;
    int tasks_submitted;
    int tasks_dispatched;
    int tasks_done;
    int tasks_failed;
    int tasks_cancelled;
    ...;
};

struct work_queue;

struct work_queue *work_queue_create(int port);
void work_queue_delete(struct work_queue *q);
int work_queue_port(struct work_queue *q);
void work_queue_specify_name(struct work_queue *q, const char *name);
int work_queue_specify_password_file(struct work_queue *q, const char *file);
const char *work_queue_name(struct work_queue *q);
int work_queue_submit(struct work_queue *q, struct work_queue_task *t);
struct work_queue_task *work_queue_wait(struct work_queue *q, int timeout);
int work_queue_empty(struct work_queue *q);
int work_queue_hungry(struct work_queue *q);
struct work_queue_task *work_queue_cancel_by_taskid(struct work_queue *q, int id);
void work_queue_get_stats(struct work_queue *q, struct work_queue_stats *s);
void work_queue_block_host(struct work_queue *q, const char *hostname);
void work_queue_block_host_with_timeout(struct work_queue *q, const char *hostname, time_t seconds);
void work_queue_unblock_host(struct work_queue *q, const char *hostname);
int work_queue_shut_down_workers(struct work_queue *q, int n);
int work_queue_tune(struct work_queue *q, const char *name, double value);
int work_queue_specify_log(struct work_queue *q, const char *logfile);
void work_queue_specify_keepalive_interval(struct work_queue *q, int interval);
void work_queue_specify_keepalive_timeout(struct work_queue *q, int timeout);
const char *work_queue_result_str(work_queue_result_t result);

struct work_queue_task *work_queue_task_create(const char *full_command);
void work_queue_task_delete(struct work_queue_task *t);
int work_queue_task_specify_file(struct work_queue_task *t, const char *local_name, const char *remote_name,
                                 work_queue_file_type_t type, work_queue_file_flags_t flags);
int work_queue_task_specify_buffer(struct work_queue_task *t, const char *data, int length, const char *remote_name,
                                   work_queue_file_flags_t flags);
void work_queue_task_specify_tag(struct work_queue_task *t, const char *tag);
void work_queue_task_specify_cores(struct work_queue_task *t, int cores);
void work_queue_task_specify_memory(struct work_queue_task *t, int64_t memory);
void work_queue_task_specify_disk(struct work_queue_task *t, int64_t disk);
void work_queue_task_specify_max_retries(struct work_queue_task *t, int64_t max_retries);
void work_queue_task_specify_running_time_max(struct work_queue_task *t, int64_t seconds);
void work_queue_task_specify_environment_variable(struct work_queue_task *t, const char *name, const char *value);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "dp3_dispatcher.workqueue._wq",
    '#include "work_queue.h"\n',
    include_dirs=[CCTOOLS_INCLUDE],
    extra_link_args=[
        "-Wl,--whole-archive",
        os.path.join(CCTOOLS_LIB, "libwork_queue.a"),
        "-Wl,--no-whole-archive",
        os.path.join(CCTOOLS_LIB, "libdttools.a"),
        "-lz",
        "-lm",
    ],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
