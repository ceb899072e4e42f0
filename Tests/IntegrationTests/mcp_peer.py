#!/usr/bin/env python3
"""MCP test peer for Tether integration tests (MCP Python SDK `mcp` 2.x).

  server: python3 mcp_peer.py server --port PORT [--host 127.0.0.1] [--legacy-only] [--tls-cert PEM --tls-key PEM]
      Streamable HTTP MCPServer at /mcp, stateful sessions (serves 2026-07-28 *and*
      the handshake generation), default DNS-rebinding protection (wrong Host -> 421).
      Prints "READY" once listening; exits cleanly on SIGTERM.
      --legacy-only answers every 2026-07-28 request with HTTP 400 / JSON-RPC -32022
      (data.supported = handshake versions), so only the initialize generation works.
  token-service: python3 mcp_peer.py token-service --port PORT --client-id ID --client-secret SECRET
      A stand-in enterprise RFC 8693 token service (HTTP Basic client auth); logs EXCHANGED per exchange.
  client: python3 mcp_peer.py client --url URL --generation {2026-07-28,2025-11-25}
              [--scenario basic] [--call TOOL [--args JSON]]... [--timeout S] [--trace]
      Prints ONE JSON object on stdout. Exit 0 = ran to the end, 2 = connection failure.
      --trace logs every HTTP exchange (request headers, status) to stderr.
"""
import argparse
import asyncio
import json
import signal
import sys
import time

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

MODERN = "2026-07-28"
LEGACY = "2025-11-25"


# ----------------------------------------------------------------------------- server
def build_server():
    from mcp.server.mcpserver import Context, MCPServer

    mcp = MCPServer("tether-upstream", log_level="WARNING")

    @mcp.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.tool()
    def delete_repo(name: str) -> str:
        """A 'dangerous' tool, for policy tests."""
        return f"deleted {name}"

    @mcp.tool()
    async def pause(seconds: float) -> str:
        """Say nothing for `seconds`, then answer: for timeout tests."""
        await asyncio.sleep(seconds)
        return f"paused {seconds}"

    @mcp.tool()
    async def slow_count(n: int, ctx: Context) -> str:
        """Send n progress notifications ~50 ms apart, then return. With a progressToken in the
        request the first notification makes the server answer with an SSE stream."""
        for i in range(1, n + 1):
            await ctx.report_progress(i, n, f"step {i}")
            await asyncio.sleep(0.05)
        return f"counted {n}"

    @mcp.tool()
    def whoami() -> str:
        """The Authorization header this server received with the call (for token tests)."""
        return LAST_AUTHORIZATION["value"] or "(none)"

    @mcp.tool()
    async def delegate() -> str:
        """Act as a specialist agent: call whoami on --delegate-url (the next MCP server, through
        this agent's own proxy) with the token this server was called with."""
        import urllib.error
        import urllib.request

        if not DELEGATE["url"]:
            return "(no --delegate-url)"
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientInfo": {"name": "specialist", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}}}
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": MODERN,
                   "Mcp-Method": "tools/call", "Mcp-Name": "whoami"}
        if LAST_AUTHORIZATION["value"]:
            headers["Authorization"] = LAST_AUTHORIZATION["value"]
        headers["Content-Type"] = "application/json"
        request = urllib.request.Request(DELEGATE["url"], data=json.dumps(body).encode(), headers=headers, method="POST")

        def send():
            try:
                with urllib.request.urlopen(request, timeout=20) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode()

        status, text = await asyncio.to_thread(send)
        return f"HTTP {status} {text}"

    @mcp.resource("file:///readme", mime_type="text/plain")
    def readme() -> str:
        return "Tether integration-test upstream."

    @mcp.prompt()
    def greet(name: str) -> str:
        """Greet someone."""
        return f"Hello, {name}!"

    return mcp


# The Authorization header of the latest POST: calls in the tests are sequential.
LAST_AUTHORIZATION = {"value": None}
# Where the delegate tool calls next (--delegate-url).
DELEGATE = {"url": None}


def record_authorization(app):
    """ASGI wrapper: remember what each POST carried in Authorization."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            value = dict(scope["headers"]).get(b"authorization")
            LAST_AUTHORIZATION["value"] = value.decode("latin-1") if value else None
        await app(scope, receive, send)

    return wrapped


def legacy_only(app):
    """ASGI wrapper: reject 2026-07-28-era requests the way a handshake-only server would
    (-32022 naming only handshake versions); an auto-negotiating client then falls back."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            pv = dict(scope["headers"]).get(b"mcp-protocol-version", b"").decode("latin-1")
            if pv and pv not in HANDSHAKE_PROTOCOL_VERSIONS:
                body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {
                    "code": -32022, "message": "Unsupported protocol version",
                    "data": {"supported": list(HANDSHAKE_PROTOCOL_VERSIONS), "requested": pv}}}).encode()
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return wrapped


async def run_server(args):
    import uvicorn

    DELEGATE["url"] = args.delegate_url
    app = record_authorization(build_server().streamable_http_app(host=args.host))  # stateful, SSE responses
    if args.legacy_only:
        app = legacy_only(app)
    # --tls-cert/--tls-key: HTTPS, as an MCP server outside the mesh would be.
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                                           timeout_graceful_shutdown=2,
                                           ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key))

    async def announce():
        while not server.started and not server.should_exit:
            await asyncio.sleep(0.02)
        if server.started:
            print("READY", flush=True)

    # uvicorn traps SIGINT/SIGTERM during serve(), shuts down gracefully, then restores the previous
    # handler and re-raises the signal; a no-op SIGTERM handler turns that into a clean exit 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    announcer = asyncio.create_task(announce())
    await server.serve()
    announcer.cancel()


# ----------------------------------------------------------------------------- token service
def run_token_service(args):
    """A stand-in for an enterprise RFC 8693 token service: checks the OAuth client (HTTP Basic),
    reads the subject and actor tokens (unverified: this is the peer, not what is under test) and
    answers with a token that says what it was given. Logs one EXCHANGED line per exchange."""
    import base64
    import http.server
    from urllib.parse import parse_qs, unquote

    def claims(token):
        try:
            part = token.split(".")[1]
            return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        except Exception:
            return {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()).items()}
            basic = self.headers.get("Authorization", "")
            try:
                client_id, secret = (unquote(x) for x in base64.b64decode(basic.removeprefix("Basic ")).decode().split(":", 1))
            except Exception:
                client_id, secret = None, None
            if (client_id, secret) != (args.client_id, args.client_secret):
                return self.answer(401, {"error": "invalid_client", "error_description": "bad client credentials"})
            if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange":
                return self.answer(400, {"error": "unsupported_grant_type"})
            issued = {"sub": claims(form.get("subject_token", "")).get("email"), "aud": form.get("audience"),
                      "act": claims(form.get("actor_token", "")).get("sub"), "scope": form.get("scope")}
            print("EXCHANGED", json.dumps(issued), flush=True)
            token = "ext." + base64.urlsafe_b64encode(json.dumps(issued).encode()).decode().rstrip("=")
            self.answer(200, {"access_token": token, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                              "token_type": "Bearer", "expires_in": 300})

    server = http.server.ThreadingHTTPServer((args.host, args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("READY", flush=True)
    server.serve_forever()


# ----------------------------------------------------------------------------- client
class CallArg(argparse.Action):
    """--call TOOL starts a call; a following --args JSON sets that call's arguments."""

    def __call__(self, parser, ns, value, option_string=None):
        calls = getattr(ns, self.dest) or []
        if option_string == "--call":
            calls.append([value, {}])
        elif not calls:
            parser.error("--args must follow a --call")
        else:
            calls[-1][1] = json.loads(value)
        setattr(ns, self.dest, calls)


def describe(exc):
    """Flatten exception groups to the first leaf; return a JSON-RPC-style error dict."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    from mcp.shared.exceptions import MCPError

    if isinstance(exc, MCPError):
        return {"code": exc.code, "message": exc.message}
    return {"code": None, "message": f"{type(exc).__name__}: {exc}"}


async def run_client(args):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp_types import DiscoverResult

    gen = args.generation
    http = []  # one entry per HTTP exchange seen by the SDK's httpx client
    out = {"generation": gen, "negotiated": None, "session_id": None, "tools": [], "calls": [],
           "delete": None, "progress_events": 0, "get_stream": None, "http": http}

    async def on_response(resp):  # httpx event hook: fires once response headers arrive
        req = resp.request
        if resp.headers.get("mcp-session-id") and out["session_id"] is None:
            out["session_id"] = resp.headers["mcp-session-id"]
        try:  # JSON-RPC method from the body (the only place it appears on the handshake wire)
            rpc = json.loads(req.content).get("method") if req.content else None
        except ValueError:
            rpc = None
        ctype = resp.headers.get("content-type", "").split(";")[0] or None
        http.append({"method": req.method, "rpc_method": rpc, "mcp_method": req.headers.get("mcp-method"),
                     "status": resp.status_code, "content_type": ctype})
        if args.trace:
            print(f"> {req.method} {req.url} {dict(req.headers)} {req.content.decode(errors='replace')}\n"
                  f"< {resp.status_code} {dict(resp.headers)}", file=sys.stderr, flush=True)

    progress = [0]  # notifications seen during the current call

    async def on_progress(progress_value, total, message):
        progress[0] += 1

    async def on_log(params):
        progress[0] += 1

    hc = create_mcp_http_client(timeout=httpx2.Timeout(args.timeout))
    hc.event_hooks = {"request": [], "response": [on_response]}
    client = Client(streamable_http_client(args.url, http_client=hc),
                    mode="legacy" if gen in HANDSHAKE_PROTOCOL_VERSIONS else gen,  # force the generation
                    read_timeout_seconds=args.timeout, logging_callback=on_log, cache=None)
    connected = False
    try:
        async with hc, client:
            if gen not in HANDSHAKE_PROTOCOL_VERSIONS:
                # mode=<version> adopts without wire traffic; send the real server/discover
                # (as a 2026 client does) and adopt its answer. No fallback to initialize.
                client.session.adopt(DiscoverResult.model_validate(await client.session.send_discover(gen)))
            connected = True
            out["negotiated"] = client.protocol_version
            try:
                out["tools"] = [t.name for t in (await client.list_tools()).tools]
            except Exception as e:
                out["tools"], out["list_error"] = None, describe(e)
            for tool, tool_args in args.calls or []:
                mark, progress[0] = len(http), 0
                entry = {"tool": tool, "ok": False, "result": None, "error": None}
                try:
                    res = await client.call_tool(tool, tool_args, progress_callback=on_progress)
                    text = "".join(getattr(c, "text", "") for c in res.content)
                    entry.update(ok=not res.is_error, result=text, is_error=res.is_error)
                except Exception as e:
                    entry["error"] = describe(e)
                entry["progress"] = progress[0]
                out["progress_events"] += progress[0]
                posts = [h for h in http[mark:] if h["method"] == "POST"]
                entry["http_status"] = posts[0]["status"] if posts else None
                entry["content_type"] = posts[0]["content_type"] if posts else None
                err = entry["error"]
                if err is not None:
                    err["http_status"] = entry["http_status"]
                    if (entry["http_status"] or 0) >= 400 and entry["content_type"] != "application/json":
                        # No JSON-RPC body: the SDK invented the code (-32603/-32600/-32601) from the status.
                        err.update(code=None, message=f"HTTP {entry['http_status']} ({err['message']})")
                out["calls"].append(entry)
            if out["session_id"]:
                # Handshake generation: the SDK opens the GET SSE stream after
                # notifications/initialized; wait (briefly) until it has answered.
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline and not any(h["method"] == "GET" for h in http):
                    await asyncio.sleep(0.02)
        # leaving `client` made the transport send DELETE (when a session exists)
    except Exception as e:
        if not connected:
            out["connect_error"] = describe(e)
            print(f"connection failed: {out['connect_error']['message']}", file=sys.stderr)
            print(json.dumps(out), flush=True)
            return 2
        out["teardown_error"] = describe(e)
    gets = [h for h in http if h["method"] == "GET"]
    out["get_stream"] = gets[0]["status"] if gets else None
    deletes = [h for h in http if h["method"] == "DELETE"]
    out["delete"] = deletes[-1]["status"] if deletes else None
    print(json.dumps(out), flush=True)
    return 0


# ----------------------------------------------------------------------------- main
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="role", required=True)
    s = sub.add_parser("server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--legacy-only", action="store_true")
    s.add_argument("--tls-cert", help="serve HTTPS with this certificate chain (PEM)")
    s.add_argument("--tls-key", help="the certificate's private key (PEM)")
    s.add_argument("--delegate-url", help="the MCP endpoint the delegate tool calls (a specialist agent's next hop)")
    t = sub.add_parser("token-service")
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--host", default="127.0.0.1")
    t.add_argument("--client-id", required=True)
    t.add_argument("--client-secret", required=True)
    c = sub.add_parser("client")
    c.add_argument("--url", required=True)
    c.add_argument("--generation", required=True, choices=[MODERN, LEGACY])
    c.add_argument("--scenario", default="basic", choices=["basic"])
    c.add_argument("--call", dest="calls", action=CallArg, metavar="TOOL")
    c.add_argument("--args", dest="calls", action=CallArg, metavar="JSON")
    c.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    c.add_argument("--trace", action="store_true", help="log HTTP exchanges to stderr")
    args = p.parse_args()
    if args.role == "server":
        asyncio.run(run_server(args))
        return 0
    if args.role == "token-service":
        run_token_service(args)
        return 0
    return asyncio.run(run_client(args))


if __name__ == "__main__":
    sys.exit(main())
