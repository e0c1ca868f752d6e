"""How long a write's answer takes while N long-poll journal readers wait and are woken by
each commit. Each round commits 1,000 transfers (so every reader has a full page to read and
render), then times a one-transfer POST from sending to answer. The readers run in a process
of their own so their work never delays the timed writes.

    python3 bench/journal-waiters.py target/release/tally 500 12        # 1,000 per commit
    python3 bench/journal-waiters.py target/release/tally 500 10 0      # only the timed writes
"""
import http.client, json, os, socket, subprocess, sys, tempfile, threading, time

binary, waiters, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
page = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
data = tempfile.mkdtemp()
server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data + "/d"], stderr=subprocess.DEVNULL)

def call(method, path, body=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=json.dumps(body) if body is not None else None)
    r = c.getresponse(); out = r.read(); c.close(); return r.status, out

for _ in range(200):
    try:
        call("GET", "/healthz"); break
    except OSError:
        time.sleep(0.05)
call("POST", "/v1/assets", {"code": "USD", "scale": 2})
call("POST", "/v1/accounts", {"accounts": [{"id": "w", "asset": "USD", "min_balance": None}, {"id": "a", "asset": "USD"}]})
# Some history for each woken reader to read and render.
for n in range(20):
    call("POST", "/v1/transfers", {"transfers": [{"id": f"h{n}-{i}", "debit": "w", "credit": "a", "amount": "1.00", "metadata": {"note": "x" * 200}} for i in range(50)]})
stop = False
def waiter():
    after = 0
    while not stop:
        try:
            _, out = call("GET", f"/v1/journal?after_seq={after}&limit=1000&wait_ms=20000")
        except OSError:
            return
        after = json.loads(out)["next_after_seq"]
# The waiters live in another process, so their own work never delays the timed writes.
pid = os.fork()
if pid == 0:
    threads = [threading.Thread(target=waiter, daemon=True) for _ in range(waiters)]
    for t in threads: t.start()
    time.sleep(3600)
    os._exit(0)
time.sleep(5)
latencies = []
for n in range(rounds):
    # A commit that gives every waiter a full page to read and render, then the timed write.
    if page:
        call("POST", "/v1/transfers", {"transfers": [{"id": f"big{n}-{i}", "debit": "w", "credit": "a", "amount": "1.00", "metadata": {"note": "x" * 200}} for i in range(page)]})
    started = time.perf_counter()
    call("POST", "/v1/transfers", {"transfers": [{"id": f"t{n}", "debit": "w", "credit": "a", "amount": "1.00"}]})
    latencies.append(time.perf_counter() - started)
    time.sleep(0.5)
os.kill(pid, 9); os.waitpid(pid, 0)
server.terminate(); server.wait()
latencies.sort()
print(f"{waiters} waiters: answer latency median {latencies[len(latencies)//2]*1000:.0f} ms, max {latencies[-1]*1000:.0f} ms over {rounds} writes")
