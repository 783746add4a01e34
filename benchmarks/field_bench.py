"""Field agent benchmark (issue 19 item 5): how soon a photographer's day is visible over a slow link.

Run from the repository root, as root (it makes a network namespace), with
RabbitMQ on 127.0.0.1:5672:

    .venv/bin/python benchmarks/field_bench.py --kbit 500 --photos 50      # the issue's run (about an hour)
    .venv/bin/python benchmarks/field_bench.py --kbit 4000 --photos 50     # the same at 4 Mbit/s (minutes)

One namespace, its loopback shaped to ``--kbit`` by tc (tbf) for one port,
two phases on that same link, in one run:

1. the agent: ``dp3-field run --max-kbps <cap>`` (``--cap-share`` of the
   link, 0.9 by default: room left for e-mail) against the real intake.
   A photo is visible when its preview is on the head node (the gallery
   shows previews at once); measured from the start to the last preview.
   The originals' phase gives the cap use: original bytes per second while
   only originals move, divided by the cap. The agent's CPU is its user +
   system time over its wall time.
2. a plain transfer: one HTTP PUT per original, one after another, to a
   plain server on the same port. A photo is visible when its original has
   arrived; measured to the last one.

Targets: last photo visible >= 30x sooner with the agent; the originals use
>= 90 % of the cap; the agent <= 10 % of one core. The photos are the
corpus's camera-sized JPEGs, repeated with distinct bytes after their end
marker (each is a different photo to the agent and the intake).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dp3_portal.embedded import EmbeddedMongo
from tests.conftest import CORPUS
from tests.integration.field.harness import AgentProcess, wait_for
from tests.integration.field.netns import Namespace, NetnsIntake, relay
from tests.rabbit import create_vhost, delete_vhost

OWNER = "ANN-FIELD"
PUT_SERVER = """
import http.server, os, sys
root = sys.argv[2]
class Put(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        length = int(self.headers["Content-Length"]); left = length
        path = os.path.join(root, os.path.basename(self.path))
        with open(path + ".part", "wb") as out:
            while left:
                data = self.rfile.read(min(65536, left)); out.write(data); left -= len(data)
        os.replace(path + ".part", path)
        self.send_response(201); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Put).serve_forever()
"""
PUT_CLIENT = """
import http.client, json, os, sys, time
port, folder = int(sys.argv[1]), sys.argv[2]
started = time.time(); arrived = {}
for number, name in enumerate(sorted(os.listdir(folder)), 1):
    data = open(os.path.join(folder, name), "rb").read()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("PUT", "/" + name, body=data)
    assert connection.getresponse().status == 201
    connection.close()
    arrived[name] = time.time() - started
    print(f"  [{arrived[name]:6.0f} s] plain: {number} originals", file=sys.stderr, flush=True)
print(json.dumps(arrived))
"""


CAMERA_SIZE = (6000, 4000)
"""24 megapixels: what a dig-site camera writes (5-8 MB a JPEG); the corpus's largest photos are 1-3 MB."""


def camera_day(folder: Path, count: int) -> int:
    """``count`` camera-sized JPEGs: the corpus's large photos at 24 MP (EXIF kept), each with distinct bytes."""
    sources = sorted(path for path in CORPUS.rglob("*.jpg") if path.stat().st_size > 1_000_000)
    bases: list[tuple[str, bytes]] = []
    for source in sources:
        with Image.open(source) as image:
            exif = image.info.get("exif", b"")
            camera = ImageOps.exif_transpose(image).convert("RGB").resize(CAMERA_SIZE, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        camera.save(out, "JPEG", quality=90, exif=exif)
        bases.append((source.stem, out.getvalue()))
    total = 0
    for number in range(count):
        stem, data = bases[number % len(bases)]
        target = folder / f"{stem}-{number:03d}.jpg"
        target.write_bytes(data + number.to_bytes(4, "big"))  # after the end marker: another photo, same image
        total += len(data) + 4
    return total


class Progress:
    """One line every ``every`` seconds while a long phase runs (an hour at 0.5 Mbps): what has arrived so far."""

    def __init__(self, started: float, every: float = 60.0) -> None:
        self.started = started
        self.every = every
        self._next = started + every

    def show(self, line: Callable[[], str]) -> None:
        now = time.time()
        if now >= self._next:
            self._next = now + self.every
            print(f"  [{now - self.started:6.0f} s] {line()}", flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kbit", type=int, default=500, help="the shaped link, kbit/s")
    parser.add_argument("--photos", type=int, default=50)
    parser.add_argument("--cap-share", type=float, default=0.9, help="the agent's --max-kbps as a share of the link")
    parser.add_argument(
        "--receipt-seconds", type=float, default=60.0, help="DP3_FIELD_RECEIPT_SECONDS (the agent's default: 60)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("field_bench: run as root (it makes a network namespace and shapes it with tc)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below cleans up after a kill
    work = Path(tempfile.mkdtemp(prefix="dp3-field-bench-"))
    space = Namespace()
    space.create()
    mongo = EmbeddedMongo(None, run_dir=work / "mongo")
    mongo_url = mongo.start()
    vhost, amqp_url = create_vhost("dp3-field-bench")
    processes: list[subprocess.Popen[str]] = []
    intake: NetnsIntake | None = None
    agent: AgentProcess | None = None
    try:
        processes += relay(space, work, 5672) + relay(space, work, int(mongo_url.rsplit(":", 1)[1].split("/")[0]))
        folder = work / "card"
        folder.mkdir()
        original_bytes = camera_day(folder, args.photos)
        intake = NetnsIntake(
            home=work / "head", mongo_url=mongo_url, database="bench", amqp_url=amqp_url, prefix=space.prefix
        )
        intake.start()
        space.shape(intake.port, args.kbit)
        _record, token = intake.device(OWNER)
        cap = args.kbit * args.cap_share
        agent = AgentProcess(
            home=work / "laptop", folder=folder, url=intake.url, token=token, owner=OWNER,
            args=("--max-kbps", f"{cap:g}"), prefix=space.prefix,
            env_extra={"DP3_FIELD_STABLE_SECONDS": "1", "DP3_FIELD_SCAN_SECONDS": "2",
                       "DP3_FIELD_RECEIPT_SECONDS": f"{args.receipt_seconds:g}"},
        )  # fmt: skip
        agent.pair()
        previews = intake.home / "previews" / OWNER
        inbox = intake.inbox / OWNER
        print(
            f"{args.photos} photos, {original_bytes / 1e6:.1f} MB; link {args.kbit} kbit/s, agent cap {cap:g} kbit/s",
            flush=True,
        )
        started = time.time()
        progress = Progress(started)

        def count(folder: Path, pattern: str = "*") -> int:
            return len([p for p in folder.glob(pattern) if not p.name.startswith(".")]) if folder.is_dir() else 0

        def so_far() -> str:
            return f"agent: {count(previews, '*.jpg')}/{args.photos} previews, {count(inbox)}/{args.photos} originals"

        def previews_done() -> bool:
            progress.show(so_far)
            return bool(count(previews, "*.jpg") == args.photos)

        def originals_done() -> bool:
            progress.show(so_far)
            return bool(count(inbox) == args.photos)

        agent.start()
        assert agent.process is not None
        wait_for(previews_done, 3600, "previews")
        last_preview = max(path.stat().st_mtime for path in previews.glob("*.jpg")) - started
        print(f"agent: every preview on the head node after {last_preview:.1f} s", flush=True)

        first_original = wait_for(lambda: inbox.is_dir() and any(inbox.iterdir()), 3600, "a first original")
        assert first_original
        phase_start = min(path.stat().st_mtime for path in inbox.iterdir())
        bytes_at_start = sum(path.stat().st_size for path in inbox.iterdir())
        wait_for(originals_done, 4 * 3600, "every original", interval=1.0)
        phase_end = max(path.stat().st_mtime for path in inbox.iterdir())
        agent_wall = time.time() - started
        agent_cpu = cpu_seconds(agent.process.pid)
        originals_rate = (original_bytes - bytes_at_start) / max(phase_end - phase_start, 1e-9)
        agent.stop()
        agent = None
        intake.stop()
        print(f"agent: every original on the head node after {phase_end - started:.1f} s; now the plain transfer",
              flush=True)  # fmt: skip

        received = work / "put-received"
        received.mkdir()
        server = subprocess.Popen([*space.prefix, sys.executable, "-c", PUT_SERVER, str(intake.port), str(received)])
        processes.append(server)  # type: ignore[arg-type]
        time.sleep(1.0)
        client = subprocess.run(
            [*space.prefix, sys.executable, "-c", PUT_CLIENT, str(intake.port), str(folder)],
            check=True, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        arrived = json.loads(client.stdout)
        last_plain = max(arrived.values())
        for path in folder.iterdir():
            assert (
                hashlib.sha256((received / path.name).read_bytes()).digest()
                == hashlib.sha256(path.read_bytes()).digest()
            )

        figures = {
            "link_kbit": args.kbit,
            "cap_kbit": cap,
            "photos": args.photos,
            "original_mb": round(original_bytes / 1e6, 1),
            "agent_last_photo_visible_s": round(last_preview, 1),
            "plain_put_last_photo_visible_s": round(last_plain, 1),
            "ratio": round(last_plain / last_preview, 1),
            "cap_use": round(originals_rate / (cap * 1000 / 8), 3),
            "agent_cpu_share_of_one_core": round(agent_cpu / agent_wall, 4),
            "agent_all_originals_s": round(phase_end - started, 1),
        }
        print(json.dumps(figures, indent=2))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        ok = figures["ratio"] >= 30 and figures["cap_use"] >= 0.9 and figures["agent_cpu_share_of_one_core"] <= 0.10
        print("targets met" if ok else "TARGETS MISSED")
        return 0 if ok else 1
    finally:
        if agent is not None:
            agent.stop()
        if intake is not None:
            intake.stop()
        for process in processes:
            process.kill()
            process.wait()
        delete_vhost(vhost)
        mongo.stop()
        space.delete()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
