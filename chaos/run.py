"""One chaos run, start to finish; everything it starts is stopped in `execute`'s finally."""

import argparse
import datetime
import json
import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from chaos.processes import BASE_DIR, MANAGE, ProcessManager, Spec, worker_argv
from chaos.services import PrivatePostgres, PrivateRedis, free_port

logger = logging.getLogger("chaos")

QUEUES = ["critical", "emails", "analytics", "default"]
# Two clusters of the critical queue, one of each other queue.
CLUSTERS = [("critical-1", "critical"), ("critical-2", "critical")] + [
    (queue, queue) for queue in QUEUES[1:]
]
WORKERS = {"critical": 3, "emails": 2, "analytics": 2, "default": 1}
OUTAGE_GRACE = 0.2
CLUSTER_ENDED = re.compile(r"Q2 cluster \[\w+\] ended \(")
CLUSTER_BROKEN = re.compile(r"Q2 cluster \[\w+\]: (.*?); restarting the whole cluster")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")
# Short enough that a killed worker's task comes back within the run's patience.
TASK_TIMEOUT, TASK_REDELIVERY = 15, 25


def process_env(
    args,
    *,
    pg: PrivatePostgres,
    redis: PrivateRedis,
    run_dir: Path,
    tmp: Path,
    site_port: int,
    secret_key: str,
    lost_responses: bool,
) -> dict[str, str]:
    """The environment of every process of the run (and of the harness itself)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "BAZAAR_MODE": "development",
        "DJANGO_DEBUG": "0",
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": pg.url,
        "REDIS_URL": redis.url,
        "CACHE_KEY_PREFIX": "bazaar-chaos",
        "BAZAAR_VAR_DIR": str(run_dir / "var"),
        "SITE_URL": f"http://127.0.0.1:{site_port}",
        "EMAIL_HOST": "",
        "TASK_FAILURE_WEBHOOK_URL": "",
        "TASKS_BACKEND": "project.background.backend.DjangoQ2Backend",
        "EVENTS_EMBEDDED_DISPATCHER": "0",
        "PAYMENT_GATEWAY": "shop.gateways.simulated.SimulatedGateway",
        "SIMULATED_GATEWAY_LEDGER_PATH": str(tmp / "ledger.sqlite3"),
        "SIMULATED_GATEWAY_LATENCY_MS": str(args.latency_ms),
        "SIMULATED_GATEWAY_FAILURE_RATE": str(args.failure_rate),
        "PAYMENT_STUCK_AFTER_SECONDS": "20",
        # Payment knobs, old and new names: give up (and reconcile) within the run.
        "PAYMENT_RETRY_WINDOW_SECONDS": "45",
        "PAYMENT_CHARGE_WINDOW_SECONDS": "45",
        "PAYMENT_RECONCILE_EVERY_SECONDS": "15",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        # A handful of accounts place hundreds of orders within minutes, by design: the
        # shop's per-user checkout and payment limits would refuse the load itself.
        "RATE_LIMIT_CHECKOUT_USER": "100000/600",
        "RATE_LIMIT_PAY_USER": "100000/600",
    }
    if lost_responses:
        env["SIMULATED_GATEWAY_LOST_RESPONSE_RATE"] = str(args.lost_response_rate)
    for queue in QUEUES:
        env[f"Q_WORKERS_{queue.upper()}"] = str(WORKERS[queue])
        env[f"Q_TIMEOUT_{queue.upper()}"] = str(TASK_TIMEOUT)
        env[f"Q_RETRY_{queue.upper()}"] = str(TASK_REDELIVERY)
    return env


def detect_features() -> dict:
    """What the code base offers right now (other work lands while this tool exists)."""
    from django.conf import settings
    from django.core.management import get_commands, load_command_class

    commands = get_commands()
    run_worker = ""
    if "run_worker" in commands:
        parser = load_command_class(commands["run_worker"], "run_worker").create_parser(
            "manage.py", "run_worker"
        )
        run_worker = "--queue" if "--queue" in parser.format_help() else "positional"
    return {
        "run_worker": run_worker,
        "lost responses": hasattr(settings, "SIMULATED_GATEWAY_LOST_RESPONSE_RATE"),
        "outage switch": "simulated_gateway" in commands,
    }


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.monotonic()
        self.started_wall = datetime.datetime.now(datetime.UTC)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")  # noqa: DTZ005 - a file name
        self.stamp = stamp
        self.run_dir = BASE_DIR / "var" / "chaos" / stamp
        self.log_dir = self.run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="bazaar-chaos-"))
        self.tmp.chmod(0o755)
        self.pg = PrivatePostgres(self.tmp)
        self.redis = PrivateRedis(self.tmp)
        self.manager = ProcessManager(self.log_dir, self.clock)
        self.injector = None
        self._observing = threading.Event()

    def clock(self) -> float:
        return time.monotonic() - self.started

    def say(self, message: str) -> None:
        print(f"[chaos {self.clock():6.1f}s] {message}", flush=True)

    def execute(self) -> int:
        from chaos import report

        result, rows, failed = {}, [], 0
        try:
            result, rows = self._run()
        except KeyboardInterrupt:
            self.say("interrupted; stopping everything")
            failed = 130
        except Exception:  # noqa: BLE001 - reported, then everything is still stopped
            traceback.print_exc()
            self.say(f"the run itself failed; logs in {self.log_dir}")
            failed = 2
        finally:
            self._observing.set()
            if self.injector is not None:
                self.injector.close()
            self.manager.stop_all()
            survivors = self.manager.survivors()
            self.redis.stop()
            self.pg.stop()
            self._keep_artifacts()
            shutil.rmtree(self.tmp, ignore_errors=True)
        if failed:
            return failed
        from chaos.invariants import Row

        rows.append(
            Row(
                "no process left after shutdown",
                f"{len(survivors)} processes",
                not survivors,
                [f"pid {pid}" for pid in survivors],
            )
        )
        result["shutdown"] = self.manager.shutdown
        result["violations"] = sum(1 for row in rows if not row.ok)
        result["ok"] = result["violations"] == 0
        report.print_report(result, rows)
        path = self.run_dir.parent / f"{self.stamp}.json"
        report.write_json(path, result, rows)
        print(f"JSON: {path}")
        return 0 if result["ok"] else 1

    def _keep_artifacts(self) -> None:
        for source in (self.tmp / "ledger.sqlite3", self.pg.log, self.redis.log):
            if source.exists():
                shutil.copy(source, self.log_dir / source.name)

    # --- the run ------------------------------------------------------------------------
    def _run(self) -> tuple[dict, list]:
        args = self.args
        self.say(f"seed {args.seed}; temp dir {self.tmp}; logs in {self.run_dir}")
        self.pg.start()
        self.redis.start()
        self.say(f"private PostgreSQL on :{self.pg.port}, Redis on :{self.redis.port}")
        web_ports = [free_port(), free_port()]
        features = self._setup_django(web_ports[0])
        from chaos import data

        prepared = data.prepare(shoppers=args.shoppers, products=args.products, stock=args.stock)
        self.say(
            f"migrated and seeded: {len(prepared['catalogue'])} products at {args.stock} units, "
            f"{len(prepared['shoppers'])} verified shoppers"
        )
        self._start_processes(web_ports, features)
        self._wait_ready(web_ports)
        return self._load_and_check(prepared, web_ports, features)

    def _setup_django(self, site_port: int) -> dict:
        secret_key = secrets.token_urlsafe(40)
        env = dict(pg=self.pg, redis=self.redis, run_dir=self.run_dir, tmp=self.tmp,
                   site_port=site_port, secret_key=secret_key)  # fmt: skip
        os.environ.update(process_env(self.args, **env, lost_responses=False))
        os.environ["DATABASE_POOL"] = "0"  # the harness is a plain client; no pool to go stale
        os.environ["LOG_LEVEL"] = "ERROR"
        sys.path.insert(0, str(BASE_DIR))
        import django

        django.setup()
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("[chaos] %(message)s"))
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
        features = detect_features()
        if self.args.worker_command == "qcluster":
            features["run_worker"] = ""  # plain Django-Q2, to compare
        # The processes' own environment: the same, with the features Django just named.
        self.env = process_env(self.args, **env, lost_responses=features["lost responses"])
        self.env.pop("DATABASE_POOL", None)
        self.env["LOG_LEVEL"] = "INFO"
        self.features = features
        self.say(
            "workers: "
            + ("manage.py run_worker" if features["run_worker"] else "manage.py qcluster")
            + f"; lost responses: {'on' if features['lost responses'] else 'not supported'}"
            + f"; outage switch: {'yes' if features['outage switch'] else 'not supported'}"
        )
        return features

    def _start_processes(self, web_ports: list[int], features: dict) -> None:
        uvicorn = [
            *(sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1"),
            *("--log-level", "warning", "--timeout-graceful-shutdown", "5"),
        ]
        for index, port in enumerate(web_ports, 1):
            self.manager.add(
                Spec(f"web-{index}", "web", [*uvicorn, "--port", str(port)], self.env, port=port)
            )
        for index in (1, 2):
            self.manager.add(
                Spec(f"dispatcher-{index}", "dispatcher", [*MANAGE, "run_dispatcher"], self.env)
            )
        for name, queue in CLUSTERS:
            argv, extra = worker_argv(queue, run_worker=features["run_worker"])
            self.manager.add(Spec(name, "cluster", argv, {**self.env, **extra}, queue=queue))
        self.manager.supervise()

    def _wait_ready(self, web_ports: list[int], timeout: float = 120) -> None:
        import requests
        from django_q.status import Stat

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                webs = all(
                    requests.get(f"http://127.0.0.1:{p}/readyz", timeout=2).status_code == 200
                    for p in web_ports
                )
            except requests.RequestException:
                webs = False
            stats = [s for s in Stat.get_all() if s.status in ("Idle", "Working")]
            if webs and len(stats) >= len(CLUSTERS):
                self.say(f"{len(self.manager.managed)} top-level processes up")
                self.ready_wall = datetime.datetime.now(datetime.UTC)
                return
            time.sleep(0.5)
        raise RuntimeError(f"processes not ready after {timeout}s; see {self.log_dir}")

    def _observe(self, anatomy) -> None:
        """Learn every cluster process's role as processes come and go."""
        while not self._observing.wait(1.0):
            try:
                anatomy.read(self.manager.of_kind("cluster"))
            except Exception:  # noqa: BLE001 - best effort while services are down
                logger.debug("observer", exc_info=True)

    def _load_and_check(self, prepared: dict, web_ports: list[int], features: dict):
        from django.db import close_old_connections

        from chaos import faults, invariants, report, shoppers
        from chaos.anatomy import Anatomy

        args = self.args
        anatomy = Anatomy(WORKERS)
        anatomy.read(self.manager.of_kind("cluster"))
        threading.Thread(target=self._observe, args=(anatomy,), daemon=True).start()
        traffic = shoppers.Traffic()
        stop_load = threading.Event()
        crowd = [
            shoppers.Shopper(email=email, password=prepared["password"],
                             catalogue=prepared["catalogue"], ports=web_ports,
                             seed=args.seed * 1000 + index, traffic=traffic, stop=stop_load)
            for index, email in enumerate(prepared["shoppers"])
        ]  # fmt: skip
        vendor = shoppers.Vendor(
            **prepared["vendor"],
            products=[p for p in prepared["catalogue"] if p["vendor_member"]],
            ports=web_ports,
            seed=args.seed,
            traffic=traffic,
            stop=stop_load,
        )
        self.injector = faults.FaultInjector(
            manager=self.manager,
            anatomy=anatomy,
            postgres=self.pg,
            redis=self.redis,
            env=self.env,
            seconds=args.seconds,
            interval=args.fault_interval,
            seed=args.seed,
            clock=self.clock,
            outage_seconds=args.outage_seconds,
            pg_down_seconds=args.pg_down_seconds,
            has_outage_switch=features["outage switch"],
        )
        load_started = self.clock()
        for person in [*crowd, vendor]:
            person.start()
        if not args.no_faults:
            self.injector.seconds = load_started + args.seconds
            self.injector.once = {k: v + load_started for k, v in self.injector.once.items()}
            self.injector.start()
        self.say(f"{len(crowd)} shoppers and a vendor shopping for {args.seconds:g}s")
        while self.clock() - load_started < args.seconds:
            time.sleep(min(10, args.seconds - (self.clock() - load_started)))
            counts = traffic.counts
            self.say(
                f"orders placed {counts['orders placed']}, faults {len(self.injector.faults)}, "
                f"restarts {len(self.manager.restarts)}, server errors "
                f"{sum(v for k, v in counts.items() if k.startswith('HTTP 5'))}"
            )
        stop_load.set()
        self.injector.stop_injecting()
        for person in [*crowd, vendor]:
            person.join(timeout=60)
        self._explain_errors(traffic.errors)
        self.say("load stopped; letting the queues drain")
        settle = self._settle(invariants.backlog)
        close_old_connections()
        served = self._final_probe_round(anatomy)
        orphans = self.manager.stale_group_members()
        pages = shoppers.audit_order_pages(crowd, traffic.orders)
        self.say(f"final probe round {served}; {len(pages)} order pages read; checking")
        checker = invariants.Checker(
            initial_stock=prepared["initial_stock"],
            stock_boundary=prepared["stock_boundary"],
            mail_dir=self.run_dir / "var" / "mail",
        )
        rows = [
            checker.payments_final(),
            checker.one_capture_per_order(),
            checker.ledger_matches_orders(),
            checker.ledger_matches_payments(),
            checker.refunds_match_ledger(),
            checker.orders_agree_with_payments(),
            checker.stock_reconciles(),
            checker.stock_history_matches_orders(),
            checker.confirmations(),
            checker.vendor_notices(),
            checker.outbox_drained(),
            checker.events_in_order(),
            checker.no_stuck_tasks(),
            checker.sweeps_kept_running(self.ready_wall),
            invariants.probes_row(),
            checker.order_pages(pages),
            checker.errors_after_commit(traffic.errors, traffic.orders),
            invariants.server_errors_row(traffic.errors, self._outages()),
            *invariants.process_rows(clusters_served=served, orphans=orphans, survivors=[])[:2],
        ]
        faults_list = self.injector.faults
        result = {
            "run": self.stamp,
            "run_dir": str(self.run_dir),
            "seed": args.seed,
            "options": f"{args.seconds:g}s load, {args.shoppers} shoppers, faults every "
            f"{args.fault_interval[0]:g}-{args.fault_interval[1]:g}s"
            + (" (no faults)" if args.no_faults else ""),
            "features": features,
            "summary": checker.summary(),
            "kills by kind": _count(f.kind for f in faults_list),
            "skipped faults": self.injector.skipped,
            "restarts by kind": report.restarts_by_kind(self.manager.restarts),
            "restarts": [vars(r) for r in self.manager.restarts],
            "cluster restarts inside run_worker": self._cluster_restarts(),
            "recovery": report.recovery_table(
                faults_list, faults.cluster_recoveries(faults_list, anatomy)
            ),
            "faults": [f.as_dict() for f in faults_list],
            "traffic": dict(traffic.counts),
            "server errors": traffic.errors,
            "tasks": checker.task_outcomes(),
            "failed tasks": checker.failed_tasks(),
            "settle": settle,
        }
        return result, rows

    def _outages(self) -> list[tuple[float, float]]:
        """Run-clock windows in which PostgreSQL or Redis was down: from the crash until the
        server accepted connections again (a moment more for the clocks' granularity)."""
        return [
            (f.at, (f.back_at if f.back_at is not None else self.clock()) + OUTAGE_GRACE)
            for f in self.injector.faults
            if f.kind in ("postgres-crash", "redis-restart")
        ]

    def _explain_errors(self, errors: list[dict]) -> None:
        """Give each server error its time in the run and the exception the web logged."""
        wanted = {error["request_id"]: error for error in errors if error.get("request_id")}
        for path in self.log_dir.glob("web-*.log"):
            for line in path.read_text(errors="replace").splitlines():
                if '"request_id"' not in line or '"exception"' not in line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                error = wanted.get(entry.get("request_id"))
                if error is not None:
                    lines = entry["exception"].strip().splitlines()
                    # The exception's own line ("psycopg.OperationalError: ..."), not a
                    # continuation of its message.
                    cause = next((ln for ln in reversed(lines) if EXCEPTION_LINE.match(ln)), "")
                    error["cause"] = (cause or lines[-1])[:300]
        for error in errors:
            for field, key in (("sent_at", "t_sent"), ("at", "t")):
                moment = datetime.datetime.fromisoformat(error[field])
                error[key] = round((moment - self.started_wall).total_seconds(), 2)

    def _cluster_restarts(self) -> dict:
        """What `run_worker` logged about ending and restarting its clusters, per cluster and
        per reason (the process manager above it only sees the main process)."""
        per_cluster, reasons = {}, {}
        for name, _ in CLUSTERS:
            path = self.log_dir / f"{name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            per_cluster[name] = len(CLUSTER_ENDED.findall(text))
            for reason in CLUSTER_BROKEN.findall(text):
                reason = re.sub(r"\b\d+\b", "N", reason)
                reasons[reason] = reasons.get(reason, 0) + 1
        return {"per cluster": per_cluster, "reasons": reasons}

    def _settle(self, backlog) -> dict:
        """Wait until no work is left (twice in a row), or the settle timeout."""
        from django.db import close_old_connections

        started = self.clock()
        quiet, last, shown = 0, {}, 0.0
        while self.clock() - started < self.args.settle_seconds:
            try:
                last = backlog()
            except Exception as exc:  # noqa: BLE001 - keep waiting through a hiccup
                last = {"error": str(exc)[:200]}
            finally:
                close_old_connections()
            quiet = quiet + 1 if not any(last.values()) else 0
            if quiet >= 2:
                break
            if self.clock() - shown > 10:
                self.say(f"backlog: {last}")
                shown = self.clock()
            time.sleep(2)
        return {"seconds": round(self.clock() - started, 1), "drained": quiet >= 2, "left": last}

    def _final_probe_round(self, anatomy, pause: float = 0.3) -> dict[str, int]:
        """Probes on every queue, enough to busy every worker: which clusters ran some?"""
        from django.db import close_old_connections

        from chaos import probes
        from project.background.models import TaskRecord

        ids = []
        for queue in QUEUES:
            clusters = sum(1 for _, q in CLUSTERS if q == queue)
            ids += [
                probes.enqueue(queue, pause=pause) for _ in range(3 * WORKERS[queue] * clusters)
            ]
        deadline = time.monotonic() + TASK_REDELIVERY + 45
        while time.monotonic() < deadline:
            if not TaskRecord.objects.filter(pk__in=ids, finished_at__isnull=True).exists():
                break
            time.sleep(1)
        anatomy.read(self.manager.of_kind("cluster"))
        served = {name: 0 for name, _ in CLUSTERS}
        for worker_ids in TaskRecord.objects.filter(
            pk__in=ids, finished_at__isnull=False
        ).values_list("worker_ids", flat=True):
            pid = str(worker_ids[-1]).rpartition(":")[2] if worker_ids else ""
            cluster = anatomy.cluster_of(int(pid)) if pid.isdigit() else None
            if cluster in served:
                served[cluster] += 1
        close_old_connections()
        return served


def _count(items) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts
