#!/usr/bin/env python3
"""What a transfer costs each side, in CPU seconds per GiB, against ssh and Syncthing, on loopback.

Each round moves one SIZE_MIB file of random bytes three ways, in turn (the order rotates every round, so no contestant
always runs on a warmer machine), after one untimed warm-up of each:

  securemesh  a seeder node (`securemesh run`) and either a downloader node with a `get` asking it through its control
              socket (MODE=node, as a TUI user's node is) or a one-off `get` process (MODE=oneoff); each `get` ends when
              the file is verified and released.
  ssh         `ssh -c chacha20-poly1305@openssh.com 127.0.0.1 "cat > FILE" < FILE` to a throwaway sshd.
  syncthing   two `syncthing serve` processes (Debian's package; no discovery, relays, NAT or compression): a send-only
              folder at one, a receive-only folder at the other added paused; timed from unpausing it until the
              receiver reports the folder idle with every byte in sync. Its folders hold hard links to a copy of the
              payload: a link to the payload itself would move the payload's ctime, and SecureMesh's seeder then
              re-hashes every chunk it serves (runs before session 11 had this: about 0.2 s of seeder CPU per GiB).

For every process involved, user and system CPU are read from /proc/PID/stat (utime, stime, and cutime/cstime for the
children it reaped: ssh's session process and its `cat` are reaped by sshd) before and after each timed transfer, and
for the one-off commands (`get`, the ssh client) from wait4's rusage. Per contestant and side (the sender and the
receiver, each with whatever processes play that part) it prints the medians of wall time, MB/s, user and system CPU
seconds per GiB, and the medians of the pairwise ratios against securemesh measured in the same round.

Every transfer starts on a settled machine: the previous transfer's output is deleted once it has been compared with
the payload, and the page cache's dirty data is written out (sync, not timed). Without this, the write-back of ssh's
1 GiB (its `cat` writes through the page cache and exits before the disk has it) ran during the next contestant's
transfer, and the compared outputs stayed cached: a SecureMesh transfer that followed ran 7-10% slower and 8 points
more idle, ssh's own times did not change (Transfer README, session 10).

  cost-per-gib.sh [ROUNDS] [SIZE_MIB]     ONLY=securemesh,ssh,syncthing (default: all three)  MODE=node|oneoff
  SECUREMESH_DLL=path/to/securemesh.dll  (default: the Release build of src/SecureMesh.Cli); a published folder or an
                                          executable works too: the Native AOT build has no dll (SECUREMESH_EXE=its securemesh)
  COMPARE_DLL=path/to/other/securemesh.dll  adds that build as one more contestant, "baseline" (before/after pairs of a
                                          change in the same rounds; "securemesh vs baseline" speed above 1x: the SECUREMESH_DLL build is faster);
                                          several, separated by commas, are "baseline", "baseline2", ...

Needs openssh-server and syncthing (apt-get install -y openssh-server syncthing). Everything runs on 127.0.0.1 in a
temporary folder that is removed at the end.
"""
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    """(user, system) CPU seconds of a live process, its reaped children included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: state is fields[0], so utime (field 14) is fields[11].
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + cutime) / TICK, (stime + cstime) / TICK


def tree_cpu(pid):
    """(user, system) CPU seconds of a live process and every live descendant, reaped children included (Syncthing
    runs its work in a child of a monitor process)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = (0.0, 0.0), [pid]
    while todo:
        p = todo.pop()
        try:
            total = add(total, proc_cpu(p))
        except OSError:
            continue
        todo.extend(children.get(p, []))
    return total


def machine_ticks():
    """(idle, total) jiffies of the whole machine, from /proc/stat's cpu line (idle and iowait count as idle)."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    return values[3] + values[4], sum(values[:8])


def run_timed(argv, stdin=None, env=None):
    """Runs a command to completion: (wall seconds, user CPU, system CPU) from wait4's rusage."""
    start = time.monotonic()
    p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} … exited {p.returncode}: {err.strip()[-400:]}")
    return wall, usage.ru_utime, usage.ru_stime


class Sample:
    """One timed transfer: wall seconds and per side (sender, receiver) user and system CPU seconds."""

    def __init__(self, wall, sender, receiver):
        self.wall, self.sender, self.receiver = wall, sender, receiver


def delta(before, after):
    return tuple(a - b for a, b in zip(after, before))


def add(*pairs):
    return tuple(sum(x) for x in zip(*pairs))


def wait_for(predicate, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def program(path):
    """The argv prefix that runs a build: an executable (the apphost, or the Native AOT securemesh) directly, a dll
    through dotnet; a folder holding either (a publish folder: its executable, as an installed command runs)."""
    if os.path.isdir(path):
        exe = os.path.join(path, "securemesh")
        path = exe if os.path.exists(exe) else os.path.join(path, "securemesh.dll")
    if not os.path.exists(path):
        raise RuntimeError(f"no {path}: dotnet build src/SecureMesh.Cli -c Release (or set SECUREMESH_DLL or SECUREMESH_EXE)")
    return ["dotnet", path] if path.endswith(".dll") else [path]


class SecureMesh:
    def __init__(self, work, payload, mode, dll=None, name="securemesh"):
        self.name = name
        self.argv = program(dll or os.environ.get("SECUREMESH_EXE") or os.environ.get(
            "SECUREMESH_DLL", os.path.join(ROOT, "src/SecureMesh.Cli/bin/Release/net10.0/securemesh.dll")))
        self.work, self.mode, self.size = work, mode, os.path.getsize(payload)
        self.seed_home, self.dl_home = os.path.join(work, name + "-s"), os.path.join(work, name + "-dl")
        self.out = os.path.join(work, name + "-out")
        self.procs = []
        for home in (self.seed_home, self.dl_home):
            self.sm(home, "init")
        seeder_id, dl_id = self.peer_id(self.seed_home), self.peer_id(self.dl_home)
        self.sm(self.seed_home, "peers", "add", dl_id, "--trust")
        self.sm(self.seed_home, "share", "add", payload)
        files = json.loads(self.sm(self.seed_home, "share", "list", "--json"))["files"]
        self.cid = files[0]["contentId"]
        port = free_port()
        self.seeder = self.start(self.seed_home, port, name + "-s.log", "listening on")
        self.sm(self.dl_home, "peers", "add", seeder_id, "--addr", f"127.0.0.1:{port}", "--trust")
        self.node = self.start(self.dl_home, free_port(), name + "-dl.log", "established") if mode == "node" else None

    def sm(self, home, *args):
        return subprocess.run([*self.argv, "--home", home, *args], check=True, capture_output=True,
                              stdin=subprocess.DEVNULL, text=True).stdout

    def peer_id(self, home):
        return json.loads(self.sm(home, "id", "--json"))["peerId"]

    def start(self, home, port, log, ready):
        path = os.path.join(self.work, log)
        with open(path, "w") as f:
            p = subprocess.Popen([*self.argv, "--home", home, "run", "--listen", f"127.0.0.1:{port}"],
                                 stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        wait_for(lambda: ready in open(path).read(), f"{log}: {ready}")
        return p

    def transfer(self):
        s0 = proc_cpu(self.seeder.pid)  # the previous output was removed by clean()
        n0 = proc_cpu(self.node.pid) if self.node else (0.0, 0.0)
        wall, gu, gs = run_timed([*self.argv, "--home", self.dl_home, "get", self.cid, "--out", self.out, "--json"],
                                 stdin=subprocess.DEVNULL)
        s1 = proc_cpu(self.seeder.pid)
        n1 = proc_cpu(self.node.pid) if self.node else (0.0, 0.0)
        return Sample(wall, delta(s0, s1), add(delta(n0, n1), (gu, gs)))

    def check(self, payload):
        return files_equal(payload, os.path.join(self.out, os.path.basename(payload)))

    def clean(self):
        shutil.rmtree(self.out, ignore_errors=True)

    def close(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


class Ssh:
    name = "ssh"

    def __init__(self, work, payload):
        if not os.path.exists("/usr/sbin/sshd") or not shutil.which("ssh"):
            raise RuntimeError("no sshd or ssh: apt-get install -y openssh-server")
        self.work, self.payload = work, payload
        self.received = os.path.join(work, "ssh-received.bin")
        d = os.path.join(work, "sshd")
        os.makedirs(d)
        for key in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, key)], check=True)
        shutil.copy(os.path.join(d, "client.pub"), os.path.join(d, "authorized_keys"))
        os.chmod(os.path.join(d, "authorized_keys"), 0o600)
        port = free_port()
        with open(os.path.join(d, "sshd_config"), "w") as f:
            f.write(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nAuthorizedKeysFile {d}/authorized_keys\n"
                    f"PidFile {d}/sshd.pid\nPasswordAuthentication no\nStrictModes no\nUsePAM no\n"
                    "Ciphers chacha20-poly1305@openssh.com\n")
        os.makedirs("/run/sshd", exist_ok=True)
        self.sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", os.path.join(d, "sshd_config"), "-E", os.path.join(d, "log")])
        self.ssh = ["ssh", "-p", str(port), "-i", os.path.join(d, "client"), "-o", "StrictHostKeyChecking=no",
                    "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-c", "chacha20-poly1305@openssh.com",
                    "127.0.0.1"]
        wait_for(lambda: subprocess.run(self.ssh + ["true"], capture_output=True).returncode == 0, "sshd")

    def transfer(self):
        d0 = proc_cpu(self.sshd.pid)  # the previous output was removed by clean()
        with open(self.payload, "rb") as f:
            wall, cu, cs = run_timed(self.ssh + [f"cat > {self.received}"], stdin=f)
        # The session process and its `cat` are reaped by sshd once the client has gone; wait for that.
        time.sleep(0.2)
        d1 = proc_cpu(self.sshd.pid)
        return Sample(wall, (cu, cs), delta(d0, d1))

    def check(self, payload):
        return files_equal(payload, self.received)

    def clean(self):
        if os.path.exists(self.received):
            os.remove(self.received)

    def close(self):
        self.sshd.terminate()
        self.sshd.wait(10)


class Syncthing:
    name = "syncthing"

    def __init__(self, work, payload):
        if not shutil.which("syncthing"):
            raise RuntimeError("no syncthing: apt-get install -y syncthing")
        self.work, self.payload, self.size, self.round = work, payload, os.path.getsize(payload), 0
        # Syncthing's folders get hard links to a copy of the payload, never to the payload itself: a link made or
        # removed moves the linked file's ctime, and a SecureMesh seeder re-hashes every chunk of a file whose ctime
        # moved since it was indexed (as it must), so linking the payload made every SecureMesh transfer after
        # Syncthing's first one pay a BLAKE3 pass that a file left alone does not.
        self.source = os.path.join(work, "st-payload.bin")
        shutil.copyfile(payload, self.source)
        self.nodes = []
        for name in ("st-send", "st-recv"):
            home = os.path.join(work, name)
            subprocess.run(["syncthing", "generate", f"--home={home}", "--no-default-folder", "--skip-port-probing"],
                           check=True, capture_output=True)
            device = subprocess.run(["syncthing", "serve", f"--home={home}", "--device-id"], check=True,
                                    capture_output=True, text=True).stdout.strip()
            gui, key, listen = free_port(), secrets.token_hex(16), free_port()
            env = dict(os.environ, STNORESTART="1", STNOUPGRADE="1")
            log = open(os.path.join(work, name + ".log"), "w")
            p = subprocess.Popen(["syncthing", "serve", f"--home={home}", "--no-browser", "--no-restart", "--no-upgrade",
                                  "--no-default-folder", f"--gui-address=http://127.0.0.1:{gui}", f"--gui-apikey={key}"],
                                 stdout=log, stderr=subprocess.STDOUT, env=env)
            self.nodes.append({"home": home, "device": device, "gui": gui, "key": key, "listen": listen, "proc": p})
        for n in self.nodes:
            wait_for(lambda n=n: self.try_api(n, "GET", "/rest/system/ping"), "syncthing's API")
            self.api(n, "PATCH", "/rest/config/options", {
                "listenAddresses": [f"tcp://127.0.0.1:{n['listen']}"], "globalAnnounceEnabled": False,
                "localAnnounceEnabled": False, "relaysEnabled": False, "natEnabled": False, "urAccepted": -1,
                "crashReportingEnabled": False, "autoUpgradeIntervalH": 0, "startBrowser": False})
        send, recv = self.nodes
        for me, other in ((send, recv), (recv, send)):
            self.api(me, "POST", "/rest/config/devices", {
                "deviceID": other["device"], "name": other["home"], "addresses": [f"tcp://127.0.0.1:{other['listen']}"],
                "compression": "never", "autoAcceptFolders": False})
        wait_for(lambda: self.connected(send, recv["device"]), "the two Syncthing instances to connect", 60)

    def api(self, node, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{node['gui']}{path}", data=data, method=method,
                                     headers={"X-API-Key": node["key"], "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
        return json.loads(text) if text else None

    def try_api(self, node, method, path):
        try:
            self.api(node, method, path)
            return True
        except OSError:
            return False

    def connected(self, node, device):
        return self.api(node, "GET", "/rest/system/connections")["connections"].get(device, {}).get("connected", False)

    def status(self, node, folder):
        return self.api(node, "GET", f"/rest/db/status?folder={folder}")

    def transfer(self):
        send, recv = self.nodes
        self.round += 1
        folder = f"r{self.round}"
        src, dst = os.path.join(self.work, "st-src-" + folder), os.path.join(self.work, "st-dst-" + folder)
        os.makedirs(src)
        os.link(self.source, os.path.join(src, os.path.basename(self.payload)))
        devices = [{"deviceID": send["device"]}, {"deviceID": recv["device"]}]
        common = {"id": folder, "label": folder, "devices": devices, "fsWatcherEnabled": False, "rescanIntervalS": 3600}
        self.api(send, "POST", "/rest/config/folders", dict(common, path=src, type="sendonly"))
        wait_for(lambda: (s := self.status(send, folder))["state"] == "idle" and s["localBytes"] == self.size,
                 "the sender to index the folder", 300)
        self.api(recv, "POST", "/rest/config/folders", dict(common, path=dst, type="receiveonly", paused=True))
        time.sleep(1)  # the paused folder's config reaches the sender before the clock starts
        s0, r0 = tree_cpu(send["proc"].pid), tree_cpu(recv["proc"].pid)
        start = time.monotonic()
        self.api(recv, "PATCH", f"/rest/config/folders/{folder}", {"paused": False})
        wait_for(lambda: (s := self.status(recv, folder))["state"] == "idle" and s["needBytes"] == 0
                 and s["inSyncBytes"] == self.size, "the receiver to finish", 600)
        wall = time.monotonic() - start
        s1, r1 = tree_cpu(send["proc"].pid), tree_cpu(recv["proc"].pid)
        self.last = os.path.join(dst, os.path.basename(self.payload))
        ok = files_equal(self.payload, self.last)
        for n in self.nodes:
            self.api(n, "DELETE", f"/rest/config/folders/{folder}")
        shutil.rmtree(src, ignore_errors=True)
        if not ok:
            raise RuntimeError("syncthing's copy differs from the payload")
        shutil.rmtree(dst, ignore_errors=True)
        return Sample(wall, delta(s0, s1), delta(r0, r1))

    def check(self, payload):
        return True  # checked inside transfer(), before the folder is removed

    def clean(self):
        pass  # transfer() removed both folders

    def close(self):
        for n in self.nodes:
            n["proc"].terminate()
        for n in self.nodes:
            try:
                n["proc"].wait(20)
            except subprocess.TimeoutExpired:
                n["proc"].kill()


def settle(contestant):
    """After a transfer has been checked: its output deleted and every dirty page written out, so that neither the
    write-back of this transfer's output nor its cached pages fall into the next contestant's timed transfer."""
    contestant.clean()
    os.sync()


def files_equal(a, b):
    return subprocess.run(["cmp", "-s", a, b]).returncode == 0


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    size_mib = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    only = os.environ.get("ONLY", "securemesh,ssh,syncthing").split(",")
    # COMPARE_DLL: one more SecureMesh build ("baseline"), or several separated by commas ("baseline", "baseline2", ...).
    compare = [d for d in os.environ.get("COMPARE_DLL", "").split(",") if d]
    baselines = {("baseline" if i == 0 else f"baseline{i + 1}"): d for i, d in enumerate(compare)}
    only += [b for b in baselines if b not in only]
    mode = os.environ.get("MODE", "node")
    work = tempfile.mkdtemp(prefix="sm-cost.")
    contestants = []
    try:
        payload = os.path.join(work, "payload.bin")
        with open(payload, "wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(1 << 20))
        for name in only:
            if name == "securemesh":
                contestants.append(SecureMesh(work, payload, mode))
            elif name in baselines:
                # COMPARE_DLL: another SecureMesh build (before a change) as its own contestant, for before/after pairs.
                contestants.append(SecureMesh(work, payload, mode, baselines[name], name))
            elif name == "ssh":
                contestants.append(Ssh(work, payload))
            elif name == "syncthing":
                contestants.append(Syncthing(work, payload))
            else:
                raise RuntimeError(f"unknown contestant {name}")
        for c in contestants:  # warm-up, not timed
            c.transfer()
            if not c.check(payload):
                raise RuntimeError(f"{c.name}'s copy differs from the payload")
            settle(c)
        samples = {c.name: [] for c in contestants}
        idle = {c.name: [] for c in contestants}
        for r in range(rounds):
            order = contestants[r % len(contestants):] + contestants[:r % len(contestants)]
            for c in order:
                i0, t0 = machine_ticks()
                samples[c.name].append(c.transfer())
                i1, t1 = machine_ticks()
                idle[c.name].append((i1 - i0) / max(t1 - t0, 1))
                if not c.check(payload):
                    raise RuntimeError(f"{c.name}'s copy differs from the payload")
                settle(c)
        report(samples, size_mib, rounds, mode, idle)
    finally:
        for c in contestants:
            c.close()
        shutil.rmtree(work, ignore_errors=True)


def report(samples, size_mib, rounds, mode, idle):
    gib = size_mib / 1024
    mb = size_mib * 1048576 / 1e6
    load = open("/proc/loadavg").read().split()[:3]
    print(f"{rounds} rounds, {size_mib} MiB, securemesh {'through a running node' if mode == 'node' else 'one-off get'}; "
          f"load average {' '.join(load)}; CPU seconds per GiB (user+system), medians")
    print(f"{'':12} {'wall s':>7} {'MB/s':>6} {'send usr':>9} {'send sys':>9} {'recv usr':>9} {'recv sys':>9} {'send':>6} {'recv':>6} "
          f"{'idle':>5}")
    for name, ss in samples.items():
        med = lambda f: statistics.median(f(s) for s in ss)
        wall = med(lambda s: s.wall)
        print(f"{name:12} {wall:7.2f} {mb / wall:6.0f} {med(lambda s: s.sender[0] / gib):9.2f} "
              f"{med(lambda s: s.sender[1] / gib):9.2f} {med(lambda s: s.receiver[0] / gib):9.2f} "
              f"{med(lambda s: s.receiver[1] / gib):9.2f} {med(lambda s: sum(s.sender) / gib):6.2f} "
              f"{med(lambda s: sum(s.receiver) / gib):6.2f} {statistics.median(idle[name]):5.0%}")
    print("idle: the whole machine's idle share of CPU time during that contestant's transfers (median; other work "
          "running on the machine shows as less idle)")
    if "securemesh" in samples:
        ours = samples["securemesh"]
        for name, ss in samples.items():
            if name == "securemesh":
                continue
            pairs = list(zip(ours, ss))
            speed = statistics.median(b.wall / a.wall for a, b in pairs)
            send = statistics.median(sum(a.sender) / max(sum(b.sender), 1e-9) for a, b in pairs)
            recv = statistics.median(sum(a.receiver) / max(sum(b.receiver), 1e-9) for a, b in pairs)
            print(f"securemesh vs {name}, median of the {len(pairs)} same-round pairs: speed {speed:.2f}x, "
                  f"CPU sender {send:.2f}x, CPU receiver {recv:.2f}x (below 1 = securemesh costs less)")
            print(f"  each round's speed: {' '.join(f'{b.wall / a.wall:.2f}x' for a, b in pairs)}")
    print("wall seconds, round by round: " + "; ".join(
        f"{name} {' '.join(f'{s.wall:.2f}' for s in ss)}" for name, ss in samples.items()))


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"cost-per-gib: {e}", file=sys.stderr)
        sys.exit(1)
