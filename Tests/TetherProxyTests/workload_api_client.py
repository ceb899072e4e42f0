"""Drives tether-proxy's SPIFFE Workload API with the official Python client,
py-spiffe (`spiffe` 0.3.2 on PyPI), over the Unix socket.

Usage: workload_api_client.py SOCKET_PATH OUT_DIR SPIFFE_ID AUDIENCE

Writes OUT_DIR/svid.pem (the leaf), OUT_DIR/intermediates.pem (possibly
empty) and OUT_DIR/bundle.pem for `openssl verify`. For the rotation check it
writes OUT_DIR/source-ready once its X509Source holds the first SVID, then
waits for the test to rotate it and writes the new leaf's serial (hex) to
OUT_DIR/rotated-serial. Prints one "ok: ..." line per checked behaviour and
exits non-zero on the first failure.
"""
import os
import sys
import threading

try:
    from cryptography.hazmat.primitives import serialization
    from spiffe import JwtSvid, SpiffeId, TrustDomain, WorkloadApiClient, X509Source
    from spiffe.workloadapi.errors import FetchJwtSvidError, ValidateJwtSvidError
except ImportError as error:
    print("py-spiffe is not installed (%s): run python3 -m pip install spiffe==0.3.2" % error, flush=True)
    sys.exit(2)

SOCKET, OUT, ID, AUDIENCE = sys.argv[1:5]
TRUST_DOMAIN = TrustDomain(ID)
TIMEOUT = 10


def ok(what):
    print("ok: " + what, flush=True)


def pem(certificates):
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def public_key_der(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    client = WorkloadApiClient(socket_path="unix://" + SOCKET)
    try:
        svid = client.fetch_x509_svid(timeout=TIMEOUT)
        assert str(svid.spiffe_id) == ID, svid.spiffe_id
        assert public_key_der(svid.leaf.public_key()) == public_key_der(svid.private_key.public_key()), "the key does not match the leaf"
        write("svid.pem", pem([svid.leaf]))
        write("intermediates.pem", pem(svid.cert_chain[1:]))
        ok("fetch_x509_svid: %s, chain of %d" % (svid.spiffe_id, len(svid.cert_chain)))

        context = client.fetch_x509_context(timeout=TIMEOUT)
        assert [str(s.spiffe_id) for s in context.x509_svids] == [ID]
        assert context.x509_bundle_set.get_bundle_for_trust_domain(TRUST_DOMAIN) is not None
        ok("fetch_x509_context")

        bundles = client.fetch_x509_bundles(timeout=TIMEOUT)
        bundle = bundles.get_bundle_for_trust_domain(TRUST_DOMAIN)
        assert bundle is not None and len(bundle.x509_authorities) >= 1, "no X.509 bundle for %s" % TRUST_DOMAIN
        write("bundle.pem", pem(bundle.x509_authorities))
        ok("fetch_x509_bundles: %d authorities" % len(bundle.x509_authorities))

        jwt = client.fetch_jwt_svid(audience={AUDIENCE}, timeout=TIMEOUT)
        assert str(jwt.spiffe_id) == ID and AUDIENCE in jwt.audience, (jwt.spiffe_id, jwt.audience)
        ok("fetch_jwt_svid")

        same = client.fetch_jwt_svid(audience={AUDIENCE}, subject=SpiffeId(ID), timeout=TIMEOUT)
        assert str(same.spiffe_id) == ID
        try:
            client.fetch_jwt_svid(audience={AUDIENCE}, subject=SpiffeId(ID + "-other"), timeout=TIMEOUT)
            raise AssertionError("a JWT-SVID for another SPIFFE ID was issued")
        except FetchJwtSvidError as error:
            assert "PERMISSION_DENIED" in str(error), error
        ok("fetch_jwt_svid for another subject: PermissionDenied")

        jwt_bundles = client.fetch_jwt_bundles(timeout=TIMEOUT)
        jwt_bundle = jwt_bundles.get_bundle_for_trust_domain(TRUST_DOMAIN)
        assert jwt_bundle is not None and len(jwt_bundle.jwt_authorities) >= 1
        validated = JwtSvid.parse_and_validate(jwt.token, jwt_bundle, {AUDIENCE})
        assert str(validated.spiffe_id) == ID
        ok("fetch_jwt_bundles: the JWT-SVID verifies locally")

        validated = client.validate_jwt_svid(jwt.token, AUDIENCE, timeout=TIMEOUT)
        assert str(validated.spiffe_id) == ID
        ok("validate_jwt_svid")

        try:
            client.validate_jwt_svid(jwt.token, AUDIENCE + "-other", timeout=TIMEOUT)
            raise AssertionError("a JWT-SVID validated for an audience it was not minted for")
        except ValidateJwtSvidError as error:
            assert "INVALID_ARGUMENT" in str(error), error
        ok("validate_jwt_svid with another audience: InvalidArgument")

        # X509Source follows the stream: the test rotates the SVID once it is ready.
        rotated = threading.Event()
        source = X509Source(workload_api_client=client, timeout_in_seconds=TIMEOUT)
        try:
            first = source.svid.leaf.serial_number
            source.subscribe_for_updates(lambda: rotated.set() if source.svid.leaf.serial_number != first else None)
            write("source-ready", b"")
            assert rotated.wait(20), "X509Source saw no rotation within 20 s"
            assert str(source.svid.spiffe_id) == ID
            write("rotated-serial", ("%x" % source.svid.leaf.serial_number).encode())
            ok("X509Source follows a rotation")
        finally:
            source.close()
    finally:
        client.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as error:
        print("FAILED: %s: %s" % (type(error).__name__, error), flush=True)
        sys.exit(1)
