"""Misbehaving clients for the listener-limit tests: raw sockets and raw
HTTP/2 frames (the `h2` library), so each test controls exactly what goes on
the wire. Every command prints one JSON line with what it observed and exits
0; the Swift tests judge the result.

  abuse_client.py h2-oversized --port P --cert C --key K --pad N
      mTLS HTTP/2 to an inbound listener: one good request on stream 1,
      then a header block of N padding bytes on stream 3; reports the
      GOAWAY and whether the connection closed.
  abuse_client.py idle --port P --count N --seconds S
      opens N TCP connections that send nothing; reports how many the
      server closed within S seconds, and when the last one closed.
  abuse_client.py h2c-idle --port P --seconds S
      an h2c connection (preface and SETTINGS, no stream) to an outbound
      listener; reports the GOAWAY and when the connection closed.
"""

import argparse
import json
import select
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions


def tools_call(text):
    body = json.dumps({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "abuse", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}},
    }).encode()
    headers = [
        (":method", "POST"), (":scheme", "https"), (":authority", "github"), (":path", "/"),
        ("content-type", "application/json"), ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "echo"),
        ("content-length", str(len(body))),
    ]
    return headers, body


def pump(sock, conn, seconds, until):
    """Feeds received bytes to `conn` until `until(events)` or EOF or time."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until(seen):
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            continue
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            seen.append("eof")
            break
        try:
            seen.extend(conn.receive_data(data))
        except h2.exceptions.ProtocolError:
            # After a GOAWAY the library takes the connection as closed and
            # refuses the server's remaining frames (the PING of a graceful
            # close): only the end of the connection matters from here on.
            continue
        out = conn.data_to_send()
        if out:
            try:
                sock.sendall(out)
            except OSError:
                pass
    return seen


def h2_oversized(args):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server is a SPIFFE ID, not a host name
    context.load_cert_chain(args.cert, args.key)
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    sock = context.wrap_socket(raw)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, validate_outbound_headers=False))
    conn.initiate_connection()
    headers, body = tools_call("first")
    conn.send_headers(1, headers)
    conn.send_data(1, body, end_stream=True)
    sock.sendall(conn.data_to_send())
    events = pump(sock, conn, 15, lambda seen: any(isinstance(e, h2.events.StreamEnded) and e.stream_id == 1 for e in seen))
    first = next((int(dict(e.headers)[b":status"]) for e in events if isinstance(e, h2.events.ResponseReceived)), None)

    headers, body = tools_call("second")
    # The h2 library keeps to the peer's SETTINGS_MAX_HEADER_LIST_SIZE only
    # when asked; it is not, so the oversized block goes out as an attacker's would.
    conn.send_headers(3, headers + [("x-pad", "a" * args.pad)], end_stream=False)
    sock.sendall(conn.data_to_send())
    started = time.monotonic()
    events = pump(sock, conn, 15, lambda seen: "eof" in seen)
    goaways = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    print(json.dumps({
        "first_status": first,
        "goaway_last_stream_ids": [g.last_stream_id for g in goaways],
        "goaway_errors": [int(g.error_code) for g in goaways],
        "closed": "eof" in events,
        "closed_after": round(time.monotonic() - started, 3),
    }))


def idle(args):
    sockets = []
    for _ in range(args.count):
        # From 127.0.0.2: thousands of client ports on 127.0.0.1 would take the
        # ports other tests running alongside have picked to listen on there.
        s = socket.create_connection(("127.0.0.1", args.port), timeout=10, source_address=("127.0.0.2", 0))
        s.setblocking(False)
        sockets.append(s)
    opened = time.monotonic()
    open_ones = set(range(len(sockets)))
    last_close = None
    deadline = opened + args.seconds
    poller = select.poll()
    for index, s in enumerate(sockets):
        poller.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
    by_fd = {s.fileno(): index for index, s in enumerate(sockets)}
    while open_ones and time.monotonic() < deadline:
        for fd, _ in poller.poll(200):
            index = by_fd[fd]
            if index not in open_ones:
                continue
            try:
                data = sockets[index].recv(1)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                open_ones.discard(index)
                poller.unregister(fd)
                last_close = time.monotonic() - opened
    print(json.dumps({"opened": len(sockets), "closed": len(sockets) - len(open_ones),
                      "last_closed_after": None if last_close is None else round(last_close, 3)}))
    for s in sockets:
        s.close()


def h2c_idle(args):
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    started = time.monotonic()
    events = pump(sock, conn, args.seconds, lambda seen: "eof" in seen)
    goaways = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    print(json.dumps({"goaway": bool(goaways), "closed": "eof" in events, "closed_after": round(time.monotonic() - started, 3)}))


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    oversized = commands.add_parser("h2-oversized")
    oversized.add_argument("--port", type=int, required=True)
    oversized.add_argument("--cert", required=True)
    oversized.add_argument("--key", required=True)
    oversized.add_argument("--pad", type=int, required=True)
    idle_parser = commands.add_parser("idle")
    idle_parser.add_argument("--port", type=int, required=True)
    idle_parser.add_argument("--count", type=int, required=True)
    idle_parser.add_argument("--seconds", type=float, required=True)
    h2c = commands.add_parser("h2c-idle")
    h2c.add_argument("--port", type=int, required=True)
    h2c.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    {"h2-oversized": h2_oversized, "idle": idle, "h2c-idle": h2c_idle}[args.command](args)


if __name__ == "__main__":
    main()
