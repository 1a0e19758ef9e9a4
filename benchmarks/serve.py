"""Load benchmark of ``kronos serve``: concurrent clients on loopback, micro-batching on and off.

Starts the server as its own process (``python -m kronos serve``) on a free loopback port, one per
mode, and runs ``--clients`` client threads for ``--duration`` seconds each, every client sending
forecast requests back to back (histories cut from the bundled GOOGL sample at random offsets,
every request with its own seed). Both servers run at once and the load alternates between them in
``--rounds`` segments (``--duration`` seconds per mode in all), so that other work on the machine
weighs on both modes alike. Prints requests/s, p50/p99 latency, status counts, the mean batch
size the server reported and the server's resident memory before and after the run.

    python benchmarks/serve.py                                  # the shipped model, 16 clients, 60 s per mode
    python benchmarks/serve.py --model random --duration 10     # random weights, kronos-open's configuration
    python benchmarks/serve.py --abuse                          # a heavy request at the limits + light clients
    python benchmarks/serve.py --burst --threads 2              # 16 requests of 50 paths: all at once vs in turn

``--burst`` measures what batching buys one server: ``--clients`` requests (``--samples`` paths each,
default 50 with ``--burst``) sent at once, against the same requests sent one after another, alternating
``--rounds`` times; it prints both wall times (median) and their ratio.

``--abuse`` (:func:`abuse_run`) is a separate run: one server with the default limits; the largest
request its budget admits (found from its own 413 answers, which say how to fit) is sent again and
again while ``--clients`` light clients send ordinary requests for ``--duration`` seconds; then a
heavy request is dropped by its client and the server's CPU use shows when the worker is free again.

Only loopback addresses are used; every loop is bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import torch

from kronos.bars.reader import read_bars
from kronos.bars.samples import sample_data_path

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def random_open_model(out: Path) -> Path:
    """Random weights with the configuration of the shipped kronos-open pair (configs/kronos-open.yaml)."""
    import yaml

    from kronos import Kronos, KronosPredictor, KronosTokenizer

    recipe = yaml.safe_load((REPO / "configs" / "kronos-open.yaml").read_text())
    torch.manual_seed(0)
    tok = KronosTokenizer(**recipe["tokenizer"]["model"]["config"])
    model = Kronos(**recipe["predictor"]["model"]["config"])
    KronosPredictor(model, tok, device="cpu", max_context=recipe["predictor"]["model"]["max_context"]).save_pretrained(
        out
    )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def request_bodies(n: int, lookback: int, pred_len: int, samples: int, seed: int) -> list[bytes]:
    df = read_bars(sample_data_path("googl"))
    rng = random.Random(seed)
    bodies = []
    for i in range(n):
        start = rng.randrange(0, len(df) - lookback)
        hist = df.iloc[start : start + lookback]
        bars = hist.assign(timestamps=hist["timestamps"].map(lambda t: t.isoformat())).to_dict("records")
        bodies.append(json.dumps({"bars": bars, "pred_len": pred_len, "sample_count": samples, "seed": i}).encode())
    return bodies


@dataclass
class Client:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    batch_sizes: list[int] = field(default_factory=list)

    def run(self, port: int, bodies: list[bytes], until: float, offset: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=120)
        i = offset
        while time.monotonic() < until:
            body = bodies[i % len(bodies)]
            i += 1
            started = time.perf_counter()
            try:
                conn.request("POST", "/v1/forecast", body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                key = f"{resp.status // 100}xx"
                if resp.status == 200:
                    self.batch_sizes.append(int(resp.getheader("X-Batch-Size", "1")))
            except (OSError, http.client.HTTPException) as exc:
                key = f"error:{type(exc).__name__}"
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=120)
            if time.monotonic() <= until:  # count only requests that finished inside the window
                self.latencies.append(time.perf_counter() - started)
                self.statuses[key] = self.statuses.get(key, 0) + 1
        conn.close()


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not become ready")


class Server:
    """One ``kronos serve`` process (micro-batching on or off) and what its load segments measured."""

    def __init__(self, args: argparse.Namespace, model: str, batching: bool) -> None:
        self.args, self.batching, self.port = args, batching, free_port()
        cmd = [
            sys.executable,
            "-m",
            "kronos",
            "serve",
            "--model",
            model,
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--threads",
            str(args.threads),
            "--log-level",
            "warning",
            "--max-batch",
            str(args.max_batch if batching else 1),
            "--batch-window-ms",
            str(args.window_ms if batching else 0),
            *args.serve_args.split(),
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.clients: list[Client] = []
        self.seconds = self.server_cpu = self.client_cpu = 0.0
        self.rss_before = self.rss_peak = self.rss_after = 0

    def ready(self, bodies: list[bytes]) -> None:
        wait_ready(self.port, self.proc)
        self.ps = psutil.Process(self.proc.pid)
        # Warm-up at full concurrency, so that the batch sizes (and buffers) of the run are reached first.
        self._load(bodies, self.args.warmup, [Client() for _ in range(self.args.clients)])
        self.rss_before = self.rss_peak = self.ps.memory_info().rss

    def _load(self, bodies: list[bytes], seconds: float, clients: list[Client]) -> None:
        until = time.monotonic() + seconds
        threads = [
            threading.Thread(target=c.run, args=(self.port, bodies, until, 97 * k + len(self.clients)))
            for k, c in enumerate(clients)
        ]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            if self.rss_before:
                self.rss_peak = max(self.rss_peak, self.ps.memory_info().rss)
            time.sleep(0.5)

    def segment(self, bodies: list[bytes], seconds: float) -> None:
        """``seconds`` of load by ``--clients`` clients; CPU time of the server and of this process counted."""
        cpu, own = sum(self.ps.cpu_times()[:2]), sum(psutil.Process().cpu_times()[:2])
        clients = [Client() for _ in range(self.args.clients)]
        self._load(bodies, seconds, clients)
        self.server_cpu += sum(self.ps.cpu_times()[:2]) - cpu
        self.client_cpu += sum(psutil.Process().cpu_times()[:2]) - own
        self.seconds += seconds
        self.clients += clients
        self.rss_after = self.ps.memory_info().rss

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def result(self) -> dict:
        lat = np.array([x for c in self.clients for x in c.latencies])
        statuses: dict[str, int] = {}
        for c in self.clients:
            for k, v in c.statuses.items():
                statuses[k] = statuses.get(k, 0) + v
        sizes = [s for c in self.clients for s in c.batch_sizes]
        return {
            "mode": "on" if self.batching else "off",
            "requests": int(lat.size),
            "rps": lat.size / self.seconds,
            "p50_ms": float(np.percentile(lat, 50) * 1000) if lat.size else float("nan"),
            "p99_ms": float(np.percentile(lat, 99) * 1000) if lat.size else float("nan"),
            "statuses": statuses,
            "mean_batch": float(np.mean(sizes)) if sizes else float("nan"),
            "rss_before_mb": self.rss_before / 2**20,
            "rss_after_mb": self.rss_after / 2**20,
            "rss_peak_mb": self.rss_peak / 2**20,
            "server_cpu_ms_per_request": self.server_cpu * 1000 / max(1, lat.size),
            "client_cpu_ms_per_request": self.client_cpu * 1000 / max(1, lat.size),
        }


def _post(port: int, body: dict, timeout: float = 600) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", "/v1/forecast", body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def _fit(message: str, field: str) -> int:
    """The number a 413 says to fit under: ``... send pred_len <= 247 ...``."""
    return int(message.split(f"{field} <= ")[1].split()[0].rstrip(",."))


def heavy_at_the_limits(port: int, bars: list[dict], args: argparse.Namespace) -> tuple[dict, list[str]]:
    """The largest request the server admits, found from its 413 answers; and those answers."""
    body = {"bars": bars, "pred_len": args.heavy_pred_len, "sample_count": args.heavy_samples, "seed": 1}
    said = []
    for name in ("pred_len", "sample_count"):
        status, answer = _post(port, {**body, "sample_count": 1} if name == "pred_len" else body)
        if status == 413:
            msg = answer["detail"][0]["msg"]
            said.append(f"{status}: {msg}")
            if name in msg:
                body[name] = _fit(msg, name)
    return body, said


def _cpu_rate(ps: psutil.Process, seconds: float) -> float:
    before = sum(ps.cpu_times()[:2])
    time.sleep(seconds)
    return (sum(ps.cpu_times()[:2]) - before) / seconds


def abuse_run(args: argparse.Namespace, model: str) -> dict:
    """A heavy request at the limits, resent back to back, plus ``--clients`` light clients for ``--duration`` s;
    then a dropped heavy request: how long until the server's worker is idle again."""
    port = free_port()
    cmd = [sys.executable, "-m", "kronos", "serve", "--model", model, "--host", HOST, "--port", str(port)]
    cmd += ["--threads", str(args.threads), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, proc)
        ps = psutil.Process(proc.pid)
        df = read_bars(sample_data_path("googl"))
        bars = df.assign(timestamps=df["timestamps"].map(lambda t: t.isoformat())).to_dict("records")
        heavy, refusals = heavy_at_the_limits(port, bars, args)
        light_bodies = request_bodies(256, args.lookback, args.pred_len, args.samples, seed=0)
        until = time.monotonic() + args.duration
        heavy_runs: list[tuple[int, float]] = []

        def heavy_loop() -> None:
            while time.monotonic() < until:
                started = time.perf_counter()
                status, _ = _post(port, heavy)
                heavy_runs.append((status, time.perf_counter() - started))

        clients = [Client() for _ in range(args.clients)]
        threads = [threading.Thread(target=heavy_loop)]
        threads += [
            threading.Thread(target=c.run, args=(port, light_bodies, until, 97 * k)) for k, c in enumerate(clients)
        ]
        rss_peak = ps.memory_info().rss
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            rss_peak = max(rss_peak, ps.memory_info().rss)
            time.sleep(0.2)
        idle_cpu = _cpu_rate(ps, 1.0)
        # a heavy request whose client goes away after 3 s: when is the worker idle again?
        with socket.create_connection((HOST, port)) as sock:
            data = json.dumps({**heavy, "seed": 2}).encode()
            head = f"POST /v1/forecast HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            sock.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
            time.sleep(3.0)
            busy_cpu = _cpu_rate(ps, 0.5)
        dropped = time.monotonic()
        freed = float("nan")
        while time.monotonic() - dropped < 30:
            if _cpu_rate(ps, 0.25) < 0.15:
                freed = time.monotonic() - dropped
                break
        lat = np.array([x for c in clients for x in c.latencies])
        statuses: dict[str, int] = {}
        for c in clients:
            for k, v in c.statuses.items():
                statuses[k] = statuses.get(k, 0) + v
        return {
            "heavy": {k: v for k, v in heavy.items() if k != "bars"} | {"bars": len(heavy["bars"])},
            "refusals": refusals,
            "heavy_done": [(s, round(t, 1)) for s, t in heavy_runs],
            "light_requests": int(lat.size),
            "light_p50_ms": float(np.percentile(lat, 50) * 1000) if lat.size else float("nan"),
            "light_p99_ms": float(np.percentile(lat, 99) * 1000) if lat.size else float("nan"),
            "light_statuses": statuses,
            "rss_peak_mb": rss_peak / 2**20,
            "cpu_busy_before_drop": busy_cpu,
            "cpu_idle_after_load": idle_cpu,
            "worker_freed_after_drop_s": freed,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def print_abuse(r: dict, args: argparse.Namespace) -> None:
    print("the server's own refusals on the way to the largest admitted request:")
    for line in r["refusals"]:
        print(f"  {line}")
    print(f"heavy request at the limits: {r['heavy']}; answers (status, seconds): {r['heavy_done']}")
    s = r["light_statuses"]
    five = sum(v for k, v in s.items() if k == "5xx")
    errors = sum(v for k, v in s.items() if k.startswith("error"))
    print(
        f"light clients: {args.clients} x {args.duration:.0f} s, {r['light_requests']} requests, p50 "
        f"{r['light_p50_ms']:.0f} ms, p99 {r['light_p99_ms']:.0f} ms, 5xx {five}, errors {errors} "
        "(target p99 < 5000 ms, no 5xx)"
    )
    print(f"server peak RSS {r['rss_peak_mb']:.0f} MB (target < 3072 MB)")
    print(
        f"dropped heavy request: the worker was idle again {r['worker_freed_after_drop_s']:.2f} s after the client "
        f"went away (target < 2 s; CPU {r['cpu_busy_before_drop']:.2f} cores while it ran)"
    )


def run(args: argparse.Namespace, model: str, bodies: list[bytes]) -> list[dict]:
    """Both servers up at once (an idle one costs nothing); the load alternates between them in
    ``--rounds`` segments, so a change in the machine's other load hits both modes alike."""
    servers = [Server(args, model, mode == "on") for mode in args.modes.split(",")]
    try:
        for server in servers:
            server.ready(bodies)
        for _ in range(args.rounds):
            for server in servers:
                server.segment(bodies, args.duration / args.rounds)
    finally:
        for server in servers:
            server.stop()
    return [server.result() for server in servers]


def burst(args: argparse.Namespace, model: str, bodies: list[bytes]) -> dict:
    """``--clients`` requests at once against the same requests in turn, on one micro-batching server."""
    server = Server(args, model, batching=True)
    chosen = bodies[: args.clients]

    def send(body: bytes, out: list) -> None:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
        conn.request("POST", "/v1/forecast", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        out.append((resp.status, int(resp.getheader("X-Batch-Size", "0") or 0)))
        conn.close()

    together, in_turn, statuses, sizes = [], [], [], []
    try:
        server.ready(bodies)
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for body in chosen:
                send(body, statuses)
            in_turn.append(time.perf_counter() - t0)
            out: list = []
            threads = [threading.Thread(target=send, args=(body, out)) for body in chosen]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            together.append(time.perf_counter() - t0)
            statuses += out
            sizes += [size for _, size in out]
    finally:
        server.stop()
    return {
        "in_turn_s": float(np.median(in_turn)),
        "together_s": float(np.median(together)),
        "statuses": sorted({status for status, _ in statuses}),
        "mean_batch_together": float(np.mean(sizes)) if sizes else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="kronos-open", help="model to serve; 'random' = random weights, kronos-open's configuration"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per mode")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds of warm-up at full concurrency before measuring"
    )
    parser.add_argument("--modes", default="on,off", help="micro-batching on, off, or both")
    parser.add_argument("--rounds", type=int, default=6, help="segments per mode, alternating between the modes")
    parser.add_argument("--lookback", type=int, default=64, help="history bars per request")
    parser.add_argument("--pred-len", type=int, default=32)
    parser.add_argument("--samples", type=int, default=None, help="sample_count per request (1; 50 with --burst)")
    parser.add_argument("--burst", action="store_true", help="requests at once vs in turn (see above)")
    parser.add_argument("--threads", type=int, default=1, help="server's PyTorch threads")
    parser.add_argument("--window-ms", type=float, default=5.0)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--serve-args", default="", help="more options for kronos serve, e.g. '--slice-seconds 4'")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--abuse", action="store_true", help="the abuse run instead (see abuse_run)")
    parser.add_argument("--heavy-pred-len", type=int, default=512, help="abuse run: the heavy request's first ask")
    parser.add_argument("--heavy-samples", type=int, default=1000, help="abuse run: the heavy request's first ask")
    args = parser.parse_args()
    if args.samples is None:
        args.samples = 50 if args.burst else 1
    if args.abuse:
        with tempfile.TemporaryDirectory() as tmp:
            model = str(random_open_model(Path(tmp) / "random-open")) if args.model == "random" else args.model
            print(
                f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; model {args.model}; "
                f"abuse run; server threads {args.threads}"
            )
            result = abuse_run(args, model)
        print_abuse(result, args)
        if args.json:
            from kronos.core.files import atomic_write_text

            atomic_write_text(
                args.json, json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **result}, indent=2)
            )
        return
    if args.burst:
        with tempfile.TemporaryDirectory() as tmp:
            model = str(random_open_model(Path(tmp) / "random-open")) if args.model == "random" else args.model
            bodies = request_bodies(max(args.clients, 32), args.lookback, args.pred_len, args.samples, seed=0)
            r = burst(args, model, bodies)
        print(
            f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; model {args.model}; "
            f"server threads {args.threads}; {args.clients} requests of {args.lookback} bars, pred_len "
            f"{args.pred_len}, sample_count {args.samples}; median of {args.rounds} rounds"
        )
        print(
            f"in turn {r['in_turn_s']:.2f} s, all at once {r['together_s']:.2f} s (mean batch "
            f"{r['mean_batch_together']:.1f}): {r['in_turn_s'] / r['together_s']:.2f}x faster at once; "
            f"statuses {r['statuses']}"
        )
        return

    with tempfile.TemporaryDirectory() as tmp:
        model = str(random_open_model(Path(tmp) / "random-open")) if args.model == "random" else args.model
        bodies = request_bodies(256, args.lookback, args.pred_len, args.samples, seed=0)
        print(
            f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; model {args.model}; "
            f"{args.clients} clients x {args.duration:.0f} s per mode; requests: {args.lookback} bars, "
            f"pred_len {args.pred_len}, sample_count {args.samples}; server threads {args.threads}"
        )
        results = run(args, model, bodies)
    print(
        "| micro-batching | requests/s | p50 ms | p99 ms | 2xx | 4xx | 5xx | errors | mean batch | RSS MB "
        "before → after (peak) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["statuses"]
        errors = sum(v for k, v in s.items() if k.startswith("error"))
        print(
            f"| {r['mode']} | {r['rps']:.2f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {s.get('2xx', 0)} | "
            f"{s.get('4xx', 0)} | "
            f"{s.get('5xx', 0)} | {errors} | {r['mean_batch']:.1f} | {r['rss_before_mb']:.0f} → "
            f"{r['rss_after_mb']:.0f} ({r['rss_peak_mb']:.0f}) |"
        )
    for r in results:
        print(
            f"micro-batching {r['mode']}: CPU per request {r['server_cpu_ms_per_request']:.1f} ms in the server, "
            f"{r['client_cpu_ms_per_request']:.1f} ms in the load generator"
        )
    if len(results) == 2 and results[1]["rps"] > 0:
        print(f"speed-up of micro-batching: {results[0]['rps'] / results[1]['rps']:.2f}x requests/s")
    if args.json:
        from kronos.core.files import atomic_write_text

        atomic_write_text(
            args.json, json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
