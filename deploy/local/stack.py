"""The whole DP3 system on one machine, under supervisord: ``make up`` / ``make down``.

``up`` checks the settings (one line on a bad value), prepares ``$DP3_HOME``
(inbox, staging, stores with their markers, logs), writes a supervisord
configuration there and runs supervisord in the foreground: it starts the
embedded MongoDB-wire server (unless ``DP3_MONGO_URL`` is set) and the five
services, restarts any that crash, and on Ctrl-C or SIGTERM stops them all,
each with its process group (the dispatcher's Work Queue workers included).
``down`` asks a stack started in the background to do the same and waits.
``add SERVICE`` runs one more instance of a stage beside a running stack, with
the stack's settings and free ports, in the foreground: stages are competing
consumers, so the new one takes its share of the work at once.

The same entry points run in the compose images (``dp3-scanner`` ...), so the
local stack and the head node run the same code with the same settings.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from dp3 import ports
from dp3.errors import ConfigError
from dp3.files import write_secret
from dp3.layout import STORE_MARKER
from dp3.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SERVICES = ("scanner", "dispatcher", "archiver", "portal", "intake")


def metrics_port(service: str) -> int:
    """``DP3_<SERVICE>_METRICS_PORT`` (a stack-level setting) or the service's default port."""
    return int(os.environ.get(f"DP3_{service.upper()}_METRICS_PORT", ports.METRICS[service]))


def embedded_mongo_port() -> int:
    return int(os.environ.get("DP3_EMBEDDED_MONGO_PORT", ports.EMBEDDED_MONGO))


def _home(settings: Settings) -> Path:
    return settings.home.resolve()


def prepare_home(settings: Settings) -> None:
    """Create $DP3_HOME's folders; mark each store (an empty folder is not a store)."""
    for folder in (settings.inbox_dir, settings.staging_dir, _home(settings) / "logs"):
        folder.mkdir(parents=True, exist_ok=True)
    for store in settings.stores:
        store.mkdir(parents=True, exist_ok=True)
        if not (store / STORE_MARKER).exists():
            subprocess.run([str(VENV_BIN / "dp3"), "stores", "init", str(store)], check=True)


def admin_password(settings: Settings) -> str:
    """DP3_ADMIN_PASSWORD, else one generated on first start and kept (0600) under $DP3_HOME.

    The portal uses it only to create ``admin`` when there is none; a password
    set later with ``dp3 users add admin`` stays.
    """
    given = os.environ.get("DP3_ADMIN_PASSWORD")
    if given:
        return given
    keep = _home(settings) / "admin-password"
    if not keep.exists():
        write_secret(keep, (secrets.token_urlsafe(12) + "\n").encode())
    return keep.read_text().strip()


def write_stack_files(settings: Settings, env: dict[str, str]) -> Path:
    """supervisord.conf and stack-env.json (for ``add``): both hold the admin password, so both are 0600."""
    home = _home(settings)
    conf = home / "supervisord.conf"
    write_secret(conf, supervisor_config(settings, env).encode())
    write_secret(home / "stack-env.json", json.dumps(env, indent=1).encode())
    return conf


def supervisor_config(settings: Settings, env: dict[str, str]) -> str:
    home = _home(settings)
    logs = home / "logs"
    sections = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={logs / 'supervisord.log'}",
        f"pidfile={home / 'supervisord.pid'}",
        f"childlogdir={logs}",
        "",
        "[unix_http_server]",
        f"file={home / 'supervisor.sock'}",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{home / 'supervisor.sock'}",
        "",
    ]
    programs: dict[str, str] = {}
    if not settings.mongo_url:
        mongo = home / "mongo"
        mongo.mkdir(exist_ok=True)
        programs["mongo"] = (
            f"{VENV_BIN / 'nx-27017'} --host 127.0.0.1 -p {embedded_mongo_port()} --data-dir {mongo} "
            f"--pid-file {home / 'mongo.pid'} --log-file {logs / 'mongo-server.log'}"
        )
    for service in SERVICES:
        programs[service] = str(VENV_BIN / f"dp3-{service}")
    prometheus = shutil.which("prometheus")
    prometheus_port = os.environ.get("DP3_PROMETHEUS_PORT", "9090")
    if prometheus and prometheus_port != "0":
        # Scrapes the default ports (deploy/prometheus/prometheus.local.yml); set
        # DP3_PROMETHEUS_PORT=0 to leave it out, e.g. when the ports are moved.
        programs["prometheus"] = (
            f"{prometheus} --config.file={REPO / 'deploy' / 'prometheus' / 'prometheus.local.yml'} "
            f"--storage.tsdb.path={home / 'prometheus'} --web.listen-address=127.0.0.1:{prometheus_port} "
            "--web.enable-lifecycle"
        )
    for name, command in programs.items():
        program_env = dict(env)
        if name in ports.METRICS:
            program_env["DP3_METRICS_PORT"] = str(metrics_port(name))
        if name == "portal":
            program_env.setdefault(
                "DP3_DISPATCHER_METRICS_URL", f"http://127.0.0.1:{metrics_port('dispatcher')}/metrics"
            )
            program_env.setdefault("DP3_ARCHIVER_METRICS_URL", f"http://127.0.0.1:{metrics_port('archiver')}/metrics")
        environment = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(program_env.items()))
        sections += [
            f"[program:{name}]",
            f"command={command}",
            f"directory={REPO}",
            f"environment={environment}",
            "autorestart=true",
            "startsecs=2",
            "startretries=1000",
            "stopsignal=TERM",
            "stopwaitsecs=30",
            # Stop the whole process group: the dispatcher's factory and workers go with it.
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={logs / (name + '.log')}",
            "stdout_logfile_maxbytes=50MB",
            "stdout_logfile_backups=5",
            f"priority={1 if name == 'mongo' else 10}",
            "",
        ]
    return "\n".join(sections)


def _escape(value: str) -> str:
    # supervisord's environment= is a comma-separated list of KEY="value"; % starts
    # its own interpolation, and a quote would end the value.
    return value.replace("%", "%%").replace('"', '\\"')


def stack_environment(settings: Settings, password: str) -> dict[str, str]:
    """What every service process gets: the DP3_* settings made explicit and absolute."""
    env = {key: value for key, value in os.environ.items() if key.startswith("DP3_")}
    env.update(
        DP3_HOME=str(_home(settings)),
        DP3_INBOX=str(settings.inbox_dir.resolve()),
        DP3_STAGING=str(settings.staging_dir.resolve()),
        DP3_STORES=",".join(str(store.resolve()) for store in settings.stores),
        DP3_ADMIN_PASSWORD=password,
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    )
    if not settings.mongo_url:
        env["DP3_MONGO_URL"] = f"mongodb://127.0.0.1:{embedded_mongo_port()}/dp3?directConnection=true"
    return env


def up(settings: Settings) -> int:
    home = _home(settings)
    home.mkdir(parents=True, exist_ok=True)
    if _running_pid(home) is not None:
        print(f"dp3: a stack is already running from {home} (make down stops it)", file=sys.stderr)
        return 1
    prepare_home(settings)
    password = admin_password(settings)
    env = stack_environment(settings, password)
    conf = write_stack_files(settings, env)
    port = os.environ.get("DP3_PORTAL_PORT", str(ports.PORTAL))
    print(
        f"DP3 is starting from {home}\n"
        f"  gallery:  http://127.0.0.1:{port}/   user: admin   password: {password}"
        " (the first one; `dp3 users add admin` changes it)\n"
        f"  inbox:    {settings.inbox_dir.resolve()}  (one sub-folder per photographer, FIRST-LAST)\n"
        f"  intake:   http://127.0.0.1:{os.environ.get('DP3_INTAKE_PORT', str(ports.INTAKE))}/files"
        " (field uploads; devices are added in the portal)\n"
        f"  logs:     {home / 'logs'}\n"
        f"  metrics:  http://127.0.0.1:{os.environ.get('DP3_PROMETHEUS_PORT', '9090')}/ (Prometheus, if installed)\n"
        f"  stop:     Ctrl-C here, or `make down`",
        flush=True,
    )
    os.execv(VENV_BIN / "supervisord", [str(VENV_BIN / "supervisord"), "-c", str(conf)])


def down(settings: Settings, timeout: float = 60.0) -> int:
    home = _home(settings)
    pid = _running_pid(home)
    if pid is None:
        print(f"dp3: no stack is running from {home}")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _running_pid(home) is None:
            print("dp3: stopped")
            return 0
        time.sleep(0.2)
    print(f"dp3: supervisord (pid {pid}) did not stop within {timeout:.0f}s", file=sys.stderr)
    return 1


def add(settings: Settings, service: str) -> int:
    """Run one more ``service`` with the running stack's environment and free ports."""
    home = _home(settings)
    saved = home / "stack-env.json"
    if _running_pid(home) is None or not saved.exists():
        print(f"dp3: no stack is running from {home} (make up starts one)", file=sys.stderr)
        return 1
    env = {**os.environ, **json.loads(saved.read_text())}
    env["DP3_METRICS_PORT"] = str(ports.free_port())
    if service == "portal":
        env["DP3_PORTAL_PORT"] = os.environ.get("DP3_ADD_PORT", str(ports.free_port()))
        print(f"dp3: another portal on http://127.0.0.1:{env['DP3_PORTAL_PORT']}/", flush=True)
    elif service == "intake":
        env["DP3_INTAKE_PORT"] = os.environ.get("DP3_ADD_PORT", str(ports.free_port()))
        # One intake per partial-uploads folder (it locks its uploads in memory); a device resumes
        # at the intake that gave it its upload's URL, so each keeps its own.
        env.setdefault("DP3_INTAKE_UPLOADS", str(home / "intake" / f"uploads-{env['DP3_INTAKE_PORT']}"))
        print(f"dp3: another intake on http://127.0.0.1:{env['DP3_INTAKE_PORT']}/files", flush=True)
    else:
        print(f"dp3: another {service}, metrics on port {env['DP3_METRICS_PORT']}", flush=True)
    entry = VENV_BIN / f"dp3-{service}"
    os.execve(entry, [str(entry)], env)


def demo(settings: Settings, corpus: Path, count: int) -> int:
    """Copy a sample of the corpus into two photographers' folders."""
    photos = sorted(p for p in (corpus / "jpg").rglob("*.jpg") if "invalid" not in p.parts and "tests" not in p.parts)
    if not photos:
        print(f"dp3: no photos under {corpus}", file=sys.stderr)
        return 1
    owners = ("JAEGER-NICHOLAS", "REEDER-PHILIP")
    for index, photo in enumerate(photos[:count]):
        folder = settings.inbox_dir / owners[index % 2]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, folder / photo.name)
    print(f"dp3: dropped {min(count, len(photos))} photos into {', '.join(owners)} under {settings.inbox_dir}")
    return 0


def _running_pid(home: Path) -> int | None:
    try:
        pid = int((home / "supervisord.pid").read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("action", choices=("up", "down", "demo", "add"))
    parser.add_argument("service", nargs="?", choices=SERVICES, help="with add: which stage to run once more")
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus" / "exif-samples")
    parser.add_argument("--count", type=int, default=24)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"dp3: bad configuration: {exc}", file=sys.stderr)
        return 2
    if args.action == "up":
        return up(settings)
    if args.action == "down":
        return down(settings)
    if args.action == "add":
        if args.service is None:
            parser.error("add needs a SERVICE: one of " + ", ".join(SERVICES))
        return add(settings, args.service)
    return demo(settings, args.corpus, args.count)


if __name__ == "__main__":
    sys.exit(main())
