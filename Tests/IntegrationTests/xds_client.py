"""Drives tether-control's ADS server with an independent xDS client: Python
grpcio and the xds-protos package, generated from Envoy's published protos.

Usage: xds_client.py XDS_ADDRESS NODE_ID TETHER_CONTROL DATA_DIR MESH_YAML
Prints one "ok: ..." line per checked behaviour; exits non-zero on the first
failure.
"""
import json
import queue
import subprocess
import sys
import threading

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

ADDRESS, NODE, CLI, DATA_DIR, MESH = sys.argv[1:6]
ROUTE = "type.googleapis.com/tether.config.v1.Route"
POLICY = "type.googleapis.com/tether.config.v1.AuthorizationPolicy"
MESH_TEXT = open(MESH).read()


def apply(timeout):
    """Applies the example mesh with the route timeout set to `timeout`."""
    text = MESH_TEXT.replace("timeout: 30s", "timeout: %s" % timeout)
    run = subprocess.run([CLI, "apply", "-f", "-", "--data-dir", DATA_DIR], input=text.encode(), capture_output=True)
    assert run.returncode == 0, run.stderr.decode()


def cli(*args):
    run = subprocess.run([CLI, *args, "--data-dir", DATA_DIR], capture_output=True)
    assert run.returncode == 0, run.stderr.decode()
    return run.stdout.decode()


class Stream:
    """One bidirectional ADS stream with a request queue and a response queue."""

    def __init__(self, method):
        self.requests = queue.Queue()
        self.responses = queue.Queue()

        def generate():
            while True:
                request = self.requests.get()
                if request is None:
                    return
                yield request

        self.call = method(generate())
        threading.Thread(target=self.pump, daemon=True).start()

    def pump(self):
        try:
            for response in self.call:
                self.responses.put(response)
        except grpc.RpcError as error:
            self.responses.put(error)

    def send(self, request):
        self.requests.put(request)

    def recv(self, timeout=5.0):
        try:
            response = self.responses.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no response within %.1fs" % timeout)
        if isinstance(response, Exception):
            raise AssertionError("stream failed: %s" % response)
        return response

    def expect_nothing(self, seconds=1.0):
        try:
            response = self.responses.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError("unexpected response: %s" % response)

    def close(self):
        self.requests.put(None)
        self.call.cancel()


def delta(type_url, subscribe=(), unsubscribe=(), nonce="", error=None, initial=None, node=True):
    request = discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, resource_names_subscribe=list(subscribe),
                                                  resource_names_unsubscribe=list(unsubscribe), response_nonce=nonce)
    if node:
        request.node.id = NODE
    if initial:
        request.initial_resource_versions.update(initial)
    if error:
        request.error_detail.code = 3
        request.error_detail.message = error
    return request


def sotw(type_url, names=(), version="", nonce="", error=None):
    request = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names), version_info=version, response_nonce=nonce)
    request.node.id = NODE
    if error:
        request.error_detail.code = 13
        request.error_detail.message = error
    return request


def route_status():
    proxies = json.loads(cli("proxies", "-o", "json"))
    states = [t for p in proxies if p["node"] == NODE and p.get("disconnectedAt") is None for t in p["types"] if t["kind"] == "Route"]
    return states


def main():
    channel = grpc.insecure_channel(ADDRESS)
    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)

    # --- Delta (incremental) ---
    stream = Stream(stub.DeltaAggregatedResources)
    stream.send(delta(ROUTE, subscribe=["*"]))
    first = stream.recv()
    assert first.type_url == ROUTE, first.type_url
    assert [r.name for r in first.resources] == ["github"], first
    assert first.resources[0].resource.type_url == ROUTE
    assert first.resources[0].version and first.nonce
    version1 = first.resources[0].version
    stream.send(delta(ROUTE, nonce=first.nonce, node=False))
    stream.expect_nothing(0.5)
    print("ok: delta wildcard subscription, resource type and version, ACK")

    stream.send(delta(POLICY, subscribe=["*"], node=False))
    policies = stream.recv()
    assert sorted(r.name for r in policies.resources) == ["github-no-writes", "github-read-only"], policies
    stream.send(delta(POLICY, nonce=policies.nonce, node=False))

    apply("45s")
    changed = stream.recv()
    assert changed.type_url == ROUTE and [r.name for r in changed.resources] == ["github"], changed
    assert changed.resources[0].version != version1
    stream.expect_nothing(0.5)
    stream.send(delta(ROUTE, nonce=changed.nonce, node=False))
    print("ok: delta change sends only the changed resource")

    apply("50s")
    rejected = stream.recv()
    stream.send(delta(ROUTE, nonce=rejected.nonce, error="route rejected by the test client", node=False))
    stream.expect_nothing(0.5)
    nacked = route_status()
    assert nacked and nacked[0]["state"] == "NACKED" and nacked[0]["message"] == "route rejected by the test client", nacked
    apply("50s")
    stream.expect_nothing(1.0)
    apply("55s")
    resent = stream.recv()
    assert [r.name for r in resent.resources] == ["github"] and resent.resources[0].version != rejected.resources[0].version
    stream.send(delta(ROUTE, nonce=resent.nonce, node=False))
    stream.expect_nothing(0.3)
    assert route_status()[0]["state"] == "SYNCED", route_status()
    print("ok: delta NACK recorded, not resent until the desired state changes")

    stream.send(delta(ROUTE, unsubscribe=["*"], node=False))
    apply("1m")
    stream.expect_nothing(1.0)
    print("ok: delta unsubscribe stops updates")

    cli("delete", "policy", "github-no-writes")
    removed = stream.recv()
    assert removed.type_url == POLICY and list(removed.removed_resources) == ["github-no-writes"] and not removed.resources, removed
    stream.send(delta(POLICY, nonce=removed.nonce, node=False))
    print("ok: delta deletion as removed_resources")
    stream.close()

    current = Stream(stub.DeltaAggregatedResources)
    current.send(delta(ROUTE, subscribe=["*"]))
    latest = current.recv()
    current.close()
    reconnect = Stream(stub.DeltaAggregatedResources)
    reconnect.send(delta(ROUTE, subscribe=["*"], initial={"github": latest.resources[0].version}))
    up_to_date = reconnect.recv()
    assert not up_to_date.resources and not up_to_date.removed_resources, up_to_date
    reconnect.expect_nothing(0.5)
    reconnect.close()
    reconnect = Stream(stub.DeltaAggregatedResources)
    reconnect.send(delta(ROUTE, subscribe=["*"], initial={"github": "stale", "ghost": "v1"}))
    diff = reconnect.recv()
    assert [r.name for r in diff.resources] == ["github"] and list(diff.removed_resources) == ["ghost"], diff
    reconnect.close()
    print("ok: delta reconnect with initial_resource_versions")

    # --- State of the world ---
    sotw_stream = Stream(stub.StreamAggregatedResources)
    sotw_stream.send(sotw(ROUTE))
    r1 = sotw_stream.recv()
    assert r1.type_url == ROUTE and len(r1.resources) == 1 and r1.resources[0].type_url == ROUTE and r1.version_info and r1.nonce, r1
    sotw_stream.send(sotw(ROUTE, version=r1.version_info, nonce=r1.nonce))
    sotw_stream.expect_nothing(0.5)
    print("ok: sotw full state, version and nonce, ACK")

    apply("2m")
    r2 = sotw_stream.recv()
    assert r2.version_info != r1.version_info and r2.nonce != r1.nonce
    # A request carrying the previous nonce is stale: ignored, even with new names.
    sotw_stream.send(sotw(ROUTE, names=["other"], version=r1.version_info, nonce=r1.nonce))
    sotw_stream.expect_nothing(0.8)
    sotw_stream.send(sotw(ROUTE, version=r2.version_info, nonce=r2.nonce))
    print("ok: sotw stale nonce ignored")

    apply("3m")
    r3 = sotw_stream.recv()
    sotw_stream.send(sotw(ROUTE, version=r2.version_info, nonce=r3.nonce, error="sotw rejection"))
    sotw_stream.expect_nothing(0.5)
    apply("3m")
    sotw_stream.expect_nothing(1.0)
    apply("4m")
    r4 = sotw_stream.recv()
    assert r4.version_info not in (r3.version_info, r2.version_info)
    sotw_stream.send(sotw(ROUTE, version=r4.version_info, nonce=r4.nonce))
    print("ok: sotw NACK not resent until the desired state changes")
    sotw_stream.close()

    # A node id that is not a SPIFFE ID is refused.
    bad = Stream(stub.DeltaAggregatedResources)
    request = delta(ROUTE, subscribe=["*"], node=False)
    request.node.id = "not-a-spiffe-id"
    bad.send(request)
    try:
        bad.recv()
        raise AssertionError("a non-SPIFFE node id was accepted")
    except AssertionError as error:
        assert "INVALID_ARGUMENT" in str(error), error
    print("ok: node.id must be a SPIFFE ID")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as error:
        print("FAIL: %s" % error)
        sys.exit(1)
