"""``orfeas``: start and wire the studio's parts. No business logic lives here."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigurationError, OrfeasError
from core.settings import Settings

if TYPE_CHECKING:
    from infra.client import StudioClient

AsyncMain = Callable[[asyncio.Event], Awaitable[None]]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    if getattr(args, "data", None):
        settings = settings.replace(data_dir=Path(args.data))
    try:
        code: int = args.run(args, settings)
    except OrfeasError as e:
        print(f"orfeas: {e}", file=sys.stderr)
        return 2
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orfeas", description="ORFEAS Studio")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start the whole studio on embedded services")
    _data(up)
    _listen(up)
    up.set_defaults(run=_up)

    api = sub.add_parser("api", help="run one API node")
    _listen(api)
    api.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # a socket `orfeas up` holds
    api.set_defaults(run=_api)

    sub.add_parser("dispatcher", help="run the outbox dispatcher").set_defaults(run=_dispatcher)
    projections = sub.add_parser("projections", help="run the projection runner")
    projections.set_defaults(run=_projections)
    projections_sub = projections.add_subparsers(metavar="ACTION")
    rebuild = projections_sub.add_parser(
        "rebuild", help="drop a read model and replay the log (its quarantine is cleared, and "
                        "the events that still fail are quarantined again)")
    rebuild.add_argument("name", help="catalogue, jobs, history or scene_objects")
    rebuild.set_defaults(run=_rebuild)
    retry = projections_sub.add_parser(
        "retry", help="re-apply quarantined events after a fix (right for per-key upserts;"
                      " where later events depended on one, rebuild instead)",
        description="Apply each quarantined event again, oldest first; those that now succeed "
                    "leave the quarantine, the others stay with their new error. The model's "
                    "position does not move, so a retried event lands after the events that "
                    "followed it: right for statements that set a row from the event alone, "
                    "not where a later event of the same record changed a row the quarantined "
                    "one should have made first. The output counts those later events; where "
                    "there are any, `orfeas projections rebuild NAME` is the safe answer.")
    retry.add_argument("name", nargs="?",
                       help="one read model (default: every model with quarantined events)")
    retry.set_defaults(run=_retry)

    worker = sub.add_parser("worker", help="run a worker")
    worker.add_argument("pool", choices=["gpu", "mesh"])
    worker.set_defaults(run=_worker)

    generate = sub.add_parser("generate", help="turn an image into a 3D mesh (GLB)")
    generate.add_argument("image", type=Path)
    generate.add_argument("-o", "--output", type=Path, required=True, help="the GLB to write")
    generate.add_argument("--project", help="project id (default: a project named 'CLI')")
    generate.add_argument("--face-budget", type=int)
    generate.add_argument("--height-mm", type=float,
                          help="the object's height in millimetres (server default: 50)")
    generate.add_argument("--seed", type=int, default=0)
    _remote(generate)
    generate.set_defaults(run=_generate)

    mesh = sub.add_parser("mesh", help="repair, restyle, texture or prepare a mesh for print")
    mesh.add_argument("operation", choices=["repair", "style", "material", "optimise"])
    mesh.add_argument("file", type=Path, help="STL, OBJ, PLY, OFF, glTF/GLB or 3MF")
    mesh.add_argument("-o", "--output", type=Path, required=True,
                      help="where to write the result; its extension picks the format "
                           "(.glb, .stl, .obj (a zip with its textures), .3mf)")
    mesh.add_argument("--units", default="mm", help="units of FILE (default mm)")
    mesh.add_argument("--params", default="{}",
                      help='the operation\'s options as JSON, e.g. \'{"style": "low_poly"}\'')
    mesh.add_argument("--project", help="project id (default: a project named 'CLI')")
    _remote(mesh)
    mesh.set_defaults(run=_mesh)

    status = sub.add_parser("status", help="report what runs on a data folder")
    _data(status)
    status.set_defaults(run=_status)

    admin = sub.add_parser("admin", help="administration")
    admin_sub = admin.add_subparsers(required=True, metavar="ACTION")
    create = admin_sub.add_parser("create-user", help="create an account")
    create.add_argument("name")
    create.add_argument("--password", required=True)
    create.add_argument("--email")
    create.add_argument("--admin", action="store_true", help="make a site administrator")
    create.add_argument("--tier", default="free", choices=("free", "pro", "enterprise"),
                        help="the account's tier of limits (default free)")
    _data(create)
    create.set_defaults(run=_create_user)
    return parser


def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="data folder (default ./.orfeas or $ORFEAS_DATA)")


def _remote(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the studio (default: the one `orfeas up` runs on --data)")
    parser.add_argument("--token", help="API token (default: $ORFEAS_TOKEN)")
    parser.add_argument("--user", help="sign in with this user instead of a token")
    parser.add_argument("--password", help="password for --user (default: $ORFEAS_PASSWORD)")
    _data(parser)


def _listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")


def _with_listen(args: argparse.Namespace, settings: Settings) -> Settings:
    if args.host:
        settings = settings.replace(host=args.host)
    if args.port:
        settings = settings.replace(port=args.port)
    return settings


# -- commands ---------------------------------------------------------------------------------


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from infra.supervisor import Supervisor

    return Supervisor(_with_listen(args, settings)).run()


def _api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    settings = _with_listen(args, settings)
    settings.require_services()
    # Yjs frames are small binary updates: compressing each one for each peer costs more CPU
    # than it saves bandwidth, so WebSocket compression is off. The transport buffers frames
    # up to twice the scene sockets' limit, so one somewhat over it reaches the route and is
    # refused with the studio's 4413 and reason; a bigger one is refused from its header by
    # the transport (1009, "message too big") before it is read into memory.
    config = uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                            log_level="info", proxy_headers=True, ws_per_message_deflate=False,
                            ws_max_size=2 * settings.ws_max_frame_bytes)
    # Under `orfeas up` the supervisor binds the port before anything else starts and hands the
    # listening socket down: no other server can take the port meanwhile, and connections made
    # while this process restarts wait in the socket's backlog instead of being refused.
    sockets = [socket.socket(fileno=args.fd)] if args.fd is not None else None
    uvicorn.Server(config).run(sockets=sockets)
    return 0


def _dispatcher(args: argparse.Namespace, settings: Settings) -> int:
    from core.events.outbox import OutboxDispatcher

    dispatcher = OutboxDispatcher(settings)
    try:
        return _run_async(dispatcher.run)
    finally:
        dispatcher.close()


def _projections(args: argparse.Namespace, settings: Settings) -> int:
    from core.projections.runner import ProjectionRunner

    runner = ProjectionRunner(_database_url(settings))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        runner.run(stop)
    finally:
        runner.close()
    return 0


def _rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from core.projections.runner import ProjectionRunner

    runner = ProjectionRunner(_database_url(settings), names=[args.name])
    try:
        replayed = runner.rebuild(args.name)
    finally:
        runner.close()
    print(f"rebuilt {args.name} from {replayed} events")
    return 0


def _retry(args: argparse.Namespace, settings: Settings) -> int:
    from core.projections.registry import READ_MODEL_NAMES
    from core.projections.runner import ProjectionRunner

    names = [args.name] if args.name else list(READ_MODEL_NAMES)
    runner = ProjectionRunner(_database_url(settings), names=names)
    try:
        outcomes = [outcome for name in names for outcome in runner.retry(name)]
    finally:
        runner.close()
    for o in outcomes:
        result = "applied" if o.error is None else f"still failing: {o.error}"
        later = (f"; {o.later_events} later events of its record were applied without it"
                 f" (rebuild {o.model} if they depended on it)" if o.later_events else "")
        print(f"{o.model} @ {o.position}: {result}{later}")
    failing = sum(o.error is not None for o in outcomes)
    print(f"retried {len(outcomes)} quarantined events: {len(outcomes) - failing} applied,"
          f" {failing} still quarantined")
    return 1 if failing else 0


def _database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise ConfigurationError("ORFEAS_DATABASE_URL is not set (or run `orfeas up`)")
    return settings.database_url


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    if args.pool == "mesh":
        from workers.mesh.worker import run_mesh_worker

        return _run_async(lambda stop: run_mesh_worker(settings, stop))
    from workers.gpu.worker import run_gpu_worker

    return _run_async(lambda stop: run_gpu_worker(settings, stop))


def _client(args: argparse.Namespace, settings: Settings) -> StudioClient:
    from infra.client import StudioClient
    from infra.supervisor import read_state

    url = args.url
    if url is None:
        state = read_state(settings.data_dir)
        if state is None:
            raise ConfigurationError(f"no studio runs on {settings.data_dir.absolute()};"
                                     " start `orfeas up` or pass --url")
        url = state["url"]
    client = StudioClient(url, args.token or os.environ.get("ORFEAS_TOKEN"))
    if args.user:
        client.sign_in(args.user, args.password or os.environ.get("ORFEAS_PASSWORD", ""))
    if not client.token:
        raise ConfigurationError("pass --token (or set ORFEAS_TOKEN), or --user and --password")
    return client


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from infra.client import ApiError

    if not args.image.is_file():
        raise ConfigurationError(f"{args.image}: no such file")
    client = _client(args, settings)
    project = args.project or _cli_project(client)
    fields = {"seed": str(args.seed)}
    if args.face_budget:
        fields["face_budget"] = str(args.face_budget)
    if args.height_mm is not None:
        fields["height_mm"] = str(args.height_mm)
    stages = ["queued", "started", "preview", "medium", "final"]
    final = None
    with tqdm(total=len(stages), desc=args.image.name, unit="stage", file=sys.stderr) as bar:
        for event in client.stream_upload(f"/api/v1/projects/{project}/generate-progressive",
                                          "image", args.image, fields):
            name = event["event"]
            if name in ("failed", "cancelled"):
                raise ApiError(f"generation {name}: {event.get('reason', '')}")
            if name in stages:
                bar.update(stages.index(name) + 1 - bar.n)
                bar.set_postfix_str(name if "faces" not in event else
                                    f"{name}: {event['faces']} faces")
            if name == "final":
                final = event
    if final is None:
        raise ApiError("the stream ended before the final stage")
    size = client.download(final["url"], args.output)
    print(f"wrote {args.output} ({size} bytes, {final['faces']} faces, job {final['job_id']})")
    return 0


def _mesh(args: argparse.Namespace, settings: Settings) -> int:
    """Upload, queue the operation, follow its job with a progress bar, download the result."""
    from tqdm import tqdm

    from infra.client import ApiError

    if not args.file.is_file():
        raise ConfigurationError(f"{args.file}: no such file")
    fmt = args.output.suffix.lower().lstrip(".")
    fmt = "obj" if fmt == "zip" else fmt
    if fmt not in ("glb", "stl", "obj", "3mf"):
        raise ConfigurationError(f"{args.output}: write .glb, .stl, .obj or .3mf")
    try:
        params = json.loads(args.params)
    except ValueError as e:
        raise ConfigurationError(f"--params is not JSON: {e}") from None
    client = _client(args, settings)
    project = args.project or _cli_project(client)
    steps = ["uploaded", "queued", "started", "finished"]
    with tqdm(total=len(steps), desc=args.file.name, unit="step", file=sys.stderr) as bar:
        query = urllib.parse.urlencode({"filename": args.file.name, "units": args.units})
        asset = client.upload(f"/api/v1/projects/{project}/assets?{query}",
                              args.file.read_bytes())
        bar.update(1)
        bar.set_postfix_str("uploaded")
        queued = client.json("POST", f"/api/v1/meshes/{asset['id']}/{args.operation}", params)
        end: dict[str, Any] = {"event": "ended", "reason": "the progress stream broke off"}
        for event in client.stream(queued["events_url"]):
            name = event["event"]
            if name in ("succeeded", "failed", "cancelled"):
                end = event
                name = "finished"
            if name in steps:
                bar.update(steps.index(name) + 1 - bar.n)
                bar.set_postfix_str(event["event"])
    if end["event"] != "succeeded":
        raise ApiError(f"{args.operation} {end['event']}: {end.get('reason') or ''}")
    result = end["result"]
    made = result["mesh"]["asset_id"]
    size = client.download(f"/api/v1/meshes/{made}/export?format={fmt}", args.output)
    output = args.output
    if fmt == "obj" and output.read_bytes()[:2] == b"PK":  # an OBJ with its MTL and textures
        output = output.rename(output.with_suffix(".zip"))
    print(f"wrote {output} ({size} bytes, {result['report'].get('faces')} faces, "
          f"job {queued['job_id']})")
    return 0


def _cli_project(client: StudioClient) -> str:
    projects = client.json("GET", "/api/v1/projects")["projects"]
    for project in projects:
        if project["name"] == "CLI":
            return str(project["id"])
    return str(client.json("POST", "/api/v1/projects", {"name": "CLI"})["id"])


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from infra.supervisor import pid_alive, read_state

    state = read_state(settings.data_dir)
    if state is None:
        print(f"not running on {settings.data_dir.absolute()}")
        return 3
    print(f"ORFEAS Studio at {state['url']} (supervisor pid {state['pid']})")
    all_running = True
    for group in ("services", "processes"):
        for name, pid in state[group].items():
            running = pid_alive(pid)
            all_running &= running
            print(f"  {name:<12} pid {pid:<8} {'running' if running else 'NOT RUNNING'}")
    try:
        with urllib.request.urlopen(f"{state['url']}/readyz", timeout=5) as r:  # noqa: S310
            ready = json.load(r)
    except OSError as e:
        print(f"  readiness: unavailable ({e})")
        return 1
    for name, check in ready["checks"].items():
        detail = {k: v for k, v in check.items() if k != "ok"}
        print(f"  {name:<12} {'ok' if check['ok'] else 'FAILING':<8} {json.dumps(detail)}")
    return 0 if all_running and ready["status"] == "ready" else 1


def _create_user(args: argparse.Namespace, settings: Settings) -> int:
    from infra.admin import create_user

    user = create_user(settings, args.name, args.password, is_admin=args.admin,
                       email=args.email, tier=args.tier)
    role = "administrator" if user.is_admin else "user"
    print(f"created {role} {user.username} ({user.id}), tier {args.tier}")
    return 0


def _run_async(entry: AsyncMain) -> int:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await entry(stop)

    asyncio.run(runner())
    return 0


if __name__ == "__main__":
    sys.exit(main())
