"""Benchmark the simulator: org generation time and memory at scale, and list throughput.

    .venv/bin/python bench/oktasim_throughput.py [--users 100000 --groups 10000 --apps 2000]
        [--clients 3 --seconds 10]

1. Generates the org in this process and reports seconds and peak RSS (the issue's bounds:
   < 30 s, < 1 GiB).
    .venv/bin/python bench/oktasim_throughput.py --orgs 1000 [--org-sizes mixed] [--no-touch]

With --orgs: many orgs in one process instead. Reports the seconds to the listening line and the
RSS then, the sizes drawn, and (unless --no-touch) the seconds and RSS after one request to every
org (which generates it).

2. Starts `python -m oktasim` with the same sizes (no latency, rate limits scaled out of the way),
   then runs N client processes that each walk `GET /api/v1/users?limit=200` pages over keep-alive
   connections (following the `next` Link) for S seconds, and reports pages/s (bound: >= 1,000).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import time

TOKEN = "00sim-super-admin-token-0000000000000000000"
NEXT = re.compile(r'<([^>]+)>; rel="next"')


def generation(users: int, groups: int, apps: int) -> tuple[float, int]:
    """Run in a child process so RSS is the generator's alone."""
    code = ("import time,resource;t=time.perf_counter();from oktasim.generate import generate;"
            f"o=generate(0,{users},{groups},{apps});"
            "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    secs, rss_kib = out.split()
    return float(secs), int(rss_kib) * 1024


def client(host: str, port: int, seconds: float, out: mp.Queue, one_pass: bool = False) -> None:
    conn = http.client.HTTPConnection(host, port)
    headers = {"Authorization": f"SSWS {TOKEN}", "Accept": "application/json"}
    path = "/api/v1/users?limit=200"
    pages = 0
    nbytes = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise SystemExit(f"unexpected {resp.status}: {body[:200]!r}")
        pages += 1
        nbytes += len(body)
        m = None
        for value in resp.headers.get_all("Link") or []:
            m = NEXT.match(value) or m
        if m is None and one_pass:
            break
        path = m.group(1).split(f":{port}", 1)[1] if m else "/api/v1/users?limit=200"
    out.put((pages, nbytes))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(x.split()[1]) for x in f if x.startswith("VmRSS")) / 1024


def many_orgs(count: int, sizes: str, touch: bool) -> None:
    import tempfile

    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        orgs_file = os.path.join(tmp, "orgs.jsonl")
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "oktasim", "--orgs", str(count), "--org-sizes", sizes,
                                 "--orgs-file", orgs_file, "--seed", "1", "--rate-limit-scale", "100000"],
                                stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline().strip()
            started = time.perf_counter() - t0
            if not line.startswith("oktasim listening on "):
                raise SystemExit(f"oktasim did not start: {line!r}")
            with open(orgs_file) as f:
                orgs = [json.loads(x) for x in f]
            users = [o["users"] for o in orgs]
            print(f"--orgs {count} --org-sizes {sizes}: listening after {started:.2f} s, RSS "
                  f"{_rss_mib(proc.pid):.0f} MiB; {sum(users)} users in all ({sum(u <= 500 for u in users)} orgs "
                  f"<= 500 users, {sum(1000 <= u < 20000 for u in users)} of 1,000-8,000, "
                  f"{users.count(20000)} of 20,000)")
            if touch:
                t1 = time.perf_counter()
                for o in orgs:
                    r = httpx.get(f"{o['url']}/api/v1/users", params={"limit": 1}, timeout=300,
                                  headers={"Authorization": f"SSWS {o['token']}"})
                    r.raise_for_status()
                print(f"one request to every org (generating it): {time.perf_counter() - t1:.1f} s, RSS "
                      f"{_rss_mib(proc.pid):.0f} MiB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        finally:
            proc.terminate()
            proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--groups", type=int, default=10_000)
    p.add_argument("--apps", type=int, default=2_000)
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--orgs", type=int, default=0, help="measure many orgs in one process instead")
    p.add_argument("--org-sizes", choices=("fixed", "mixed"), default="mixed")
    p.add_argument("--no-touch", action="store_true", help="with --orgs: do not request every org")
    a = p.parse_args()
    if a.orgs:
        many_orgs(a.orgs, a.org_sizes, not a.no_touch)
        return

    secs, rss = generation(a.users, a.groups, a.apps)
    print(f"generation {a.users} users / {a.groups} groups / {a.apps} apps: {secs:.1f} s, "
          f"peak RSS {rss / 2**20:.0f} MiB  (bounds: < 30 s, < 1024 MiB)")

    proc = subprocess.Popen(
        [sys.executable, "-m", "oktasim", "--port", "0", "--users", str(a.users), "--groups", str(a.groups),
         "--apps", str(a.apps), "--rate-limit-scale", "100000"],
        stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        m = re.match(r"oktasim listening on http://([^:]+):(\d+)$", line)
        if not m:
            raise SystemExit(f"oktasim did not start: {line!r}")
        host, port = m.group(1), int(m.group(2))
        q: mp.Queue = mp.Queue()
        # one full pass first: a long-running server has its user JSON and pages cached
        warm = mp.Process(target=client, args=(host, port, 600.0, q, True))
        warm.start()
        warm.join()
        q.get()
        procs = [mp.Process(target=client, args=(host, port, a.seconds, q)) for _ in range(a.clients)]
        cpu0 = _cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        for pr in procs:
            pr.start()
        for pr in procs:
            pr.join()
        elapsed = time.perf_counter() - t0
        server_cpu = _cpu_seconds(proc.pid) - cpu0
        results = [q.get() for _ in procs]
        pages = sum(r[0] for r in results)
        nbytes = sum(r[1] for r in results)
        server_rss = 0
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                server_rss = next(int(x.split()[1]) for x in f if x.startswith("VmHWM")) * 1024
        except OSError:
            pass
        print(f"GET /api/v1/users?limit=200 with {a.clients} client processes for {a.seconds:.0f} s: "
              f"{pages / elapsed:.0f} pages/s ({pages} pages, {nbytes / pages / 1024:.0f} KiB/page), "
              f"server peak RSS {server_rss / 2**20:.0f} MiB  (bound: >= 1000 pages/s)")
        print(f"server CPU: {server_cpu:.1f} s for {pages} pages = {pages / max(server_cpu, 1e-9):.0f} pages per "
              f"server CPU-second (the server's own capacity, independent of the clients' share of the CPUs)")
        print(f"machine: {os.cpu_count()} CPUs; client and server share them; load average "
              f"{os.getloadavg()[0]:.1f} at the end")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
