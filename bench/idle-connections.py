"""Resident memory of a server holding idle connections that never send a byte: before,
with N open, and after the header read timeout has closed them.

    python3 bench/idle-connections.py target/release/tally 1000 5000
"""
import os, resource, socket, subprocess, sys, tempfile, time

binary, counts = sys.argv[1], [int(n) for n in sys.argv[2:]]
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", tempfile.mkdtemp() + "/d"], stderr=subprocess.DEVNULL)

def rss_mib():
    with open(f"/proc/{server.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port)).close(); break
    except OSError:
        time.sleep(0.05)
time.sleep(0.5)
for count in counts:
    before = rss_mib()
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    time.sleep(1.5)
    during = rss_mib()
    time.sleep(12)  # past the 10 s header read timeout
    closed = sum(1 for c in held if c.recv(1, socket.MSG_DONTWAIT if False else 0) == b"")
    after = rss_mib()
    print(f"{count} idle connections: RSS {before:.1f} -> {during:.1f} MiB ({(during - before) * 1024 / count:.1f} KiB each); "
          f"{closed} closed by the server after the timeout; RSS then {after:.1f} MiB")
    for c in held: c.close()
server.terminate(); server.wait()
