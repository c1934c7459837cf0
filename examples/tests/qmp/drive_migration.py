#!/usr/bin/env python3
"""Drives a whole migration between two vmstate-rs demo processes with QEMU's
own Python QMP client (qemu.qmp, from PyPI), as one drives two QEMUs:

    drive_migration.py SOURCE_QMP DESTINATION_QMP MIGRATION_URI

SOURCE_QMP / DESTINATION_QMP: a unix socket path, or HOST:PORT.
Checks, on the way: the greeting, negotiation, QEMU-shaped errors for bad
arguments, capabilities, parameters, the MIGRATION / MIGRATION_PASS / STOP /
RESUME events, query-migrate and query-status; ends both with `quit`.
Prints one JSON line with what it saw (the Rust test reads it) and exits 0
when every check held, 1 otherwise.
"""

import asyncio
import json
import sys
import time

from qemu.qmp import EventListener, ExecuteError, QMPClient

TIMEOUT = 60.0


def address(text):
    if ":" in text and not text.startswith("/"):
        host, port = text.rsplit(":", 1)
        return (host, int(port))
    return text


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


async def connect(name, addr):
    """Connects once the process listens (it may still be starting)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        client = QMPClient(name)
        try:
            await client.connect(address(addr))
            return client
        except Exception:  # noqa: BLE001 - not listening yet
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def expect_error(client, cmd, args, klass, desc):
    try:
        await client.execute(cmd, args)
    except ExecuteError as e:
        check(e.error_class == klass, f"{cmd} {args}: class {e.error_class!r}, wanted {klass!r}")
        check(str(e) == desc, f"{cmd} {args}: desc {str(e)!r}, wanted {desc!r}")
        return
    raise Failed(f"{cmd} {args}: succeeded, wanted {klass}: {desc}")


async def until_status(listener, wanted, seen):
    """Reads events until MIGRATION reaches one of `wanted`; returns it."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        left = deadline - time.monotonic()
        check(left > 0, f"no MIGRATION event with a status in {wanted}; saw {seen}")
        ev = await asyncio.wait_for(listener.get(), timeout=left)
        data = ev.get("data") or {}
        check("timestamp" in ev and "seconds" in ev["timestamp"], f"event without timestamp: {ev}")
        if ev["event"] == "MIGRATION":
            seen.append("MIGRATION " + data["status"])
            if data["status"] in wanted:
                return data["status"]
        elif ev["event"] == "MIGRATION_PASS":
            seen.append(f"MIGRATION_PASS {data['pass']}")
        else:
            seen.append(ev["event"])


async def drain(listener, seen, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            ev = await asyncio.wait_for(listener.get(), timeout=deadline - time.monotonic())
        except asyncio.TimeoutError:
            return
        data = ev.get("data") or {}
        if ev["event"] == "MIGRATION":
            seen.append("MIGRATION " + data["status"])
        elif ev["event"] == "MIGRATION_PASS":
            seen.append(f"MIGRATION_PASS {data['pass']}")
        else:
            seen.append(ev["event"])


async def main(src_addr, dst_addr, mig_uri):
    report = {"ok": False}
    src = await connect("source", src_addr)
    dst = await connect("destination", dst_addr)
    try:
        for c in (src, dst):
            v = c.greeting.QMP.version["qemu"]
            check((v["major"], v["minor"]) == (7, 2), f"greeting version {v}")
            check(c.greeting.QMP.capabilities == [], f"capabilities {c.greeting.QMP.capabilities}")
        report["greeting_package"] = src.greeting.QMP.version["package"]

        # QEMU-shaped errors (texts as QEMU 7.2 gives them).
        await expect_error(src, "migrate", {}, "GenericError", "Parameter 'uri' is missing")
        await expect_error(src, "migrate", {"uri": mig_uri, "bogus": 1},
                           "GenericError", "Parameter 'bogus' is unexpected")
        await expect_error(src, "migrate", {"uri": 5}, "GenericError",
                           "Invalid parameter type for 'uri', expected: string")
        await expect_error(src, "migrate", {"uri": "ftp:x"}, "GenericError",
                           "Parameter 'uri' expects a valid migration protocol")
        await expect_error(src, "migrate-set-capabilities",
                           {"capabilities": [{"capability": "events"}]}, "GenericError",
                           "Parameter 'capabilities[0].state' is missing")
        await expect_error(src, "migrate-set-capabilities",
                           {"capabilities": [{"capability": "foo", "state": True}]},
                           "GenericError", "Parameter 'capability' does not accept value 'foo'")
        await expect_error(src, "migrate-set-parameters", {"downtime-limit": 3000000},
                           "GenericError",
                           "Parameter 'downtime_limit' expects an integer in the range of "
                           "0 to (2000 * 1000) ms")
        await expect_error(src, "no-such-command", {}, "CommandNotFound",
                           "The command no-such-command has not been found")
        await expect_error(src, "migrate-incoming", {"uri": mig_uri}, "GenericError",
                           "'-incoming' was not specified on the command line")
        await expect_error(dst, "migrate", {"uri": mig_uri}, "GenericError",
                           "Guest is waiting for an incoming migration")
        report["errors_checked"] = 10

        status = await dst.execute("query-status")
        check(status == {"status": "inmigrate", "singlestep": False, "running": False},
              f"destination query-status {status}")
        status = await src.execute("query-status")
        check(status["running"] is True and status["status"] == "running",
              f"source query-status {status}")

        for c in (src, dst):
            await c.execute("migrate-set-capabilities",
                            {"capabilities": [{"capability": "events", "state": True},
                                              {"capability": "return-path", "state": True}]})
        caps = {c["capability"]: c["state"] for c in await src.execute("query-migrate-capabilities")}
        check(caps["events"] and caps["return-path"] and not caps["postcopy-ram"], f"caps {caps}")
        await src.execute("migrate-set-parameters", {"downtime-limit": 300})
        params = await src.execute("query-migrate-parameters")
        check(params["downtime-limit"] == 300, f"parameters {params}")
        report["parameters"] = params

        src_l, dst_l = EventListener(), EventListener()
        src.register_listener(src_l)
        dst.register_listener(dst_l)
        src_seen, dst_seen = [], []

        t0 = time.monotonic()
        await dst.execute("migrate-incoming", {"uri": mig_uri})
        await expect_error(dst, "migrate-incoming", {"uri": mig_uri}, "GenericError",
                           "The incoming migration has already been started")
        q = await dst.execute("query-migrate")
        check(q.get("status") in ("setup", "active"), f"destination query-migrate {q}")
        await src.execute("migrate", {"uri": mig_uri})
        await expect_error(src, "migrate", {"uri": mig_uri}, "GenericError",
                           "There's a migration process in progress")
        end = await until_status(src_l, ("completed", "failed", "cancelled"), src_seen)
        check(end == "completed", f"source ended {end}: {src_seen}")
        end = await until_status(dst_l, ("completed", "failed", "cancelled"), dst_seen)
        check(end == "completed", f"destination ended {end}: {dst_seen}")
        report["seconds"] = round(time.monotonic() - t0, 3)
        await drain(src_l, src_seen, 0.3)
        await drain(dst_l, dst_seen, 0.3)
        report["source_events"] = src_seen
        report["destination_events"] = dst_seen
        check("STOP" in src_seen, f"no STOP on the source: {src_seen}")
        check(any(e.startswith("MIGRATION_PASS") for e in src_seen),
              f"no MIGRATION_PASS on the source: {src_seen}")
        check("RESUME" in dst_seen, f"no RESUME on the destination: {dst_seen}")

        q = await src.execute("query-migrate")
        check(q["status"] == "completed", f"source query-migrate {q}")
        check(q["ram"]["transferred"] > 0 and "total-time" in q, f"source query-migrate {q}")
        report["source_query_migrate"] = q
        q = await dst.execute("query-migrate")
        check(q == {"status": "completed"}, f"destination query-migrate {q}")
        s = await src.execute("query-status")
        check(s["status"] == "postmigrate" and s["running"] is False, f"source status {s}")
        s = await dst.execute("query-status")
        check(s["status"] == "running" and s["running"] is True, f"destination status {s}")
        await expect_error(src, "migrate", {"uri": mig_uri}, "GenericError",
                           "Can't migrate the vm that was paused due to previous migration")
        report["ok"] = True
    finally:
        for c in (src, dst):
            try:
                await c.execute("quit")
            except Exception:  # noqa: BLE001 - it may hang up first
                pass
            try:
                await c.disconnect()
            except Exception:  # noqa: BLE001
                pass
        print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(asyncio.run(main(*sys.argv[1:])))
    except Failed as e:
        print(f"CHECK FAILED: {e}", file=sys.stderr)
        sys.exit(1)
