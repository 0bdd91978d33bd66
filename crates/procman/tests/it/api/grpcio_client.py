"""An independent gRPC client (Python grpcio) against a running manager.

Run by the integration test `api::grpcio` as

    grpcio_client.py STUBS PORT TOKEN SOCKET

where STUBS holds the modules `grpc_tools.protoc` generated from
procman/v1/procman.proto. The manager's config has two processes, in this
order: `sleeper` (a `sleep`) and `talker` (a shell that prints `talk 1` to
`talk 8`, then sleeps).

Each check prints one line, `<name> <result>`, for the test to assert on;
the first that does not hold ends the script with a message on stderr and
exit status 1. Every call has a deadline.
"""

import json
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Generous: the test machine may be loaded.
DEADLINE = 30.0


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def report(name, result):
    print(f"{name} {result}", flush=True)


def refused(call, code, what):
    """`call()` must fail with `code`; returns the error's details."""
    try:
        call()
    except grpc.RpcError as e:
        if e.code() != code:
            fail(f"{what}: {e.code()} ({e.details()}), not {code}")
        return e.details()
    fail(f"{what}: succeeded, not {code}")


def main():
    stubs, port, token, socket = sys.argv[1:5]
    sys.path.insert(0, stubs)
    from procman.v1 import procman_pb2 as pb
    from procman.v1 import procman_pb2_grpc as rpc

    auth = [("authorization", "Bearer " + token)]
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=DEADLINE)
    pm = rpc.ProcessManagerStub(channel)

    # grpc.health.v1 needs no token.
    health = health_pb2_grpc.HealthStub(channel)
    for service in ["", "procman.v1.ProcessManager"]:
        r = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=DEADLINE)
        if r.status != health_pb2.HealthCheckResponse.SERVING:
            fail(f"health of {service!r}: {r.status}")
    report("health", "SERVING")

    # The token: none, a wrong one, the right one.
    list_req = pb.ListProcessesRequest()
    refused(lambda: pm.ListProcesses(list_req, timeout=DEADLINE),
            grpc.StatusCode.UNAUTHENTICATED, "ListProcesses without a token")
    refused(lambda: pm.ListProcesses(list_req, timeout=DEADLINE,
                                     metadata=[("authorization", "Bearer wrong")]),
            grpc.StatusCode.UNAUTHENTICATED, "ListProcesses with a wrong token")
    report("unauthenticated", "2")
    listed = pm.ListProcesses(list_req, metadata=auth, timeout=DEADLINE).processes
    report("processes", ",".join(p.id for p in listed))
    states = {p.id: p for p in listed}

    refused(lambda: pm.GetProcess(pb.ProcessRequest(id="nope"), metadata=auth, timeout=DEADLINE),
            grpc.StatusCode.NOT_FOUND, "GetProcess of an unknown id")
    report("unknown", "NOT_FOUND")

    # Restart: a new pid.
    sleeper = states["sleeper"]
    if sleeper.state != "running" or not sleeper.HasField("pid"):
        fail(f"sleeper is not running: {sleeper}")
    p = pm.RestartProcess(pb.ProcessRequest(id="sleeper"), metadata=auth, timeout=DEADLINE)
    if p.state != "running" or not p.HasField("pid") or p.pid == sleeper.pid:
        fail(f"restart of pid {sleeper.pid} gave {p}")
    report("restart", f"{sleeper.pid} {p.pid}")

    for signal in ["NOPE", "999", ""]:
        req = pb.SignalRequest(id="sleeper", signal=signal)
        refused(lambda: pm.SignalProcess(req, metadata=auth, timeout=DEADLINE),
                grpc.StatusCode.INVALID_ARGUMENT, f"SignalProcess {signal!r}")
    report("bad_signal", "INVALID_ARGUMENT")

    # Events: follow, stop the process from a second call, see it stopped.
    stream = pm.Events(pb.EventsRequest(id="sleeper", last=0, follow=True),
                       metadata=auth, timeout=3 * DEADLINE)
    # The response head: the server has subscribed, no event can be missed.
    stream.initial_metadata()
    stopped = pm.StopProcess(pb.ProcessRequest(id="sleeper"), metadata=auth, timeout=DEADLINE)
    if stopped.state != "stopped":
        fail(f"StopProcess: {stopped}")
    seen = []
    for e in stream:
        if e.process != "sleeper":
            fail(f"an event of another process: {e}")
        # `from` is a Python keyword: only getattr reaches the field.
        seen.append(f"{getattr(e, 'from')}>{e.to}")
        if e.to == "stopped":
            break
    report("events", ",".join(seen))
    stream.cancel()
    try:
        for e in stream:
            fail(f"an event after cancel: {e}")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.CANCELLED:
            fail(f"the cancelled stream ended with {e.code()} ({e.details()})")
    report("cancelled", stream.code().name)
    # The connection goes on serving.
    p = pm.GetProcess(pb.ProcessRequest(id="sleeper"), metadata=auth, timeout=DEADLINE)
    report("after_cancel", p.process.state)

    # Logs: the last 5 records, once the talker has printed all 8 lines.
    want = [f"talk {i}" for i in range(4, 9)]
    give_up = time.monotonic() + DEADLINE
    while True:
        records = pm.Logs(pb.LogsRequest(id="talker", lines=5, follow=False),
                          metadata=auth, timeout=DEADLINE)
        lines = [json.loads(r.json).get("line") for r in records]
        if lines == want:
            break
        if time.monotonic() > give_up:
            fail(f"Logs gave {lines}, not {want}")
        time.sleep(0.1)
    report("logs", "|".join(lines))
    channel.close()

    # The Unix socket: no token, a plain authority.
    local = grpc.insecure_channel("unix:" + socket,
                                  options=[("grpc.default_authority", "localhost")])
    listed = rpc.ProcessManagerStub(local).ListProcesses(list_req, timeout=DEADLINE).processes
    report("unix", ",".join(p.id for p in listed))
    local.close()


if __name__ == "__main__":
    main()
