"""StackDock's own checks for schemathesis, loaded by scripts/fuzz-api."""

import schemathesis


@schemathesis.check
def no_server_fault(ctx, response, case):
    """Fails on a 5xx that is the server's own fault: any but 502.

    A 502 says a provider could not be asked: the fuzzer may connect a dock to a provider's
    real URL, which the run keeps out of reach. Whether a route may answer 502 at all is
    status_code_conformance's to judge, against the document.
    """
    if response.status_code >= 500 and response.status_code != 502:
        body = getattr(response, "text", "") or ""
        raise AssertionError(f"server error {response.status_code}: {body[:300]}")
