"""`json-health`: a verify-phase step in Python.

GETs a JSON health endpoint (optionally with a bearer token from a granted
secret), reads one field and compares it with the expected value. Healthy: the
step is done. Not yet: it asks medic for another attempt, so a workflow can
wait for a restore to take effect (`retry: { attempts: N }` bounds the wait).
Across attempts it remembers the value it saw last (step state) and puts every
change on the incident timeline, e.g. "checkout status: degraded -> ok".

componentize-py turns this module into a component: the class named after the
exported interface (`Step`) implements `describe` and `run`. The `wit_world`
package is generated from wit/0.1.0 at build time (scripts/build-polyglot).
"""

import json
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, outgoing_handler, streams
from wit_world.imports import wasi_http_types as http
from wit_world.imports.medic_step_types import (
    Capabilities,
    Invocation,
    Level,
    Manifest,
    Outcome,
    Outcome_Done,
    Outcome_RetryAfter,
    RetryAfter,
    StepError,
)

VERSION = "0.1.0"
# A health document is small; more than this is not one.
MAX_BODY = 1 << 20

PARAMS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {
            "type": "string",
            "pattern": "^https?://",
            "description": "JSON health endpoint, e.g. http://checkout:8080/healthz",
        },
        "field": {
            "type": "string",
            "default": "status",
            "description": "Dotted path of the value to compare, e.g. checks.db.status",
        },
        "expect": {
            "type": ["string", "number", "boolean", "null"],
            "default": "ok",
            "description": "The value that means healthy",
        },
        "token_secret": {
            "type": "string",
            "description": "Name of a granted secret sent as `Authorization: Bearer`",
        },
        "retry_ms": {
            "type": "integer",
            "minimum": 100,
            "default": 5000,
            "description": "While unhealthy, ask for another attempt after this long",
        },
    },
}


class Failure(Exception):
    """Ends the attempt with a step error (what medic puts on the timeline)."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class Step(exports.Step):
    def describe(self) -> Manifest:
        # Must not call the host: `medic validate` runs this without a run.
        return Manifest(
            name="json-health",
            version=VERSION,
            summary="GET a JSON health endpoint and wait until a field has the expected value",
            params_schema=json.dumps(PARAMS_SCHEMA),
            # The host comes from `url`, so the workflow grants it (`allow:`).
            capabilities=Capabilities(hosts=[], secrets=[]),
        )

    def run(self, invocation: Invocation) -> Outcome:
        try:
            return check(invocation)
        except Failure as f:
            failure = f
        except Exception as e:  # a bug: still a clear step error, not a trap
            failure = Failure(f"unexpected {type(e).__name__}: {e}", False)
        host.annotate(f"json-health failed: {failure.message}")
        # componentize-py maps a raised Err to the `result`'s error case.
        raise Err(StepError(message=failure.message, retryable=failure.retryable))


def check(invocation: Invocation) -> Outcome:
    params = parse_params(invocation.params)
    url, field, expect = params["url"], params["field"], params["expect"]

    headers = [("accept", b"application/json")]
    if "token_secret" in params:
        name = params["token_secret"]
        token = host.secret(name)
        if token is None:
            raise Failure(
                f"secret {name} is not available to this step (grant it with `secrets: [{name}]`)",
                retryable=False,
            )
        headers.append(("authorization", f"Bearer {token}".encode()))

    status, body = get(url, headers)
    host.log(Level.INFO, f"GET {url} -> {status} ({len(body)} bytes)")
    if not 200 <= status < 300:
        # 5xx and 429 may clear up; other answers will not by asking again.
        raise Failure(
            f"GET {url} answered HTTP {status}: {excerpt(body)}",
            retryable=status >= 500 or status == 429,
        )
    try:
        document = json.loads(body)
    except ValueError as e:
        raise Failure(f"GET {url}: the answer is not JSON ({e}): {excerpt(body)}", False)
    value = lookup(document, field, url)

    # Durable across attempts of this step in this run (written before the
    # call returns): the timeline shows each change once, not every poll.
    seen = json.dumps(value)
    previous = host.state_get("last_value")
    checks = int(host.state_get("checks") or "0") + 1
    host.state_set("checks", str(checks))
    if seen != previous:
        host.state_set("last_value", seen)
        change = f"{previous} -> {seen}" if previous is not None else f"is {seen}"
        host.annotate(f"{url} {field} {change}")

    healthy = same(value, expect)
    output = {"url": url, "field": field, "value": value, "healthy": healthy,
              "http_status": status, "checks": checks}
    if healthy:
        return Outcome_Done(json.dumps(output))
    return Outcome_RetryAfter(RetryAfter(
        ms=params["retry_ms"],
        reason=f"{field} is {seen}, waiting for {json.dumps(expect)}",
    ))


def parse_params(text: str) -> dict:
    try:
        params = json.loads(text or "{}")
    except ValueError as e:
        raise Failure(f"params are not JSON: {e}", False)
    if not isinstance(params, dict):
        raise Failure("params must be an object", False)
    unknown = sorted(set(params) - set(PARAMS_SCHEMA["properties"]))
    if unknown:
        raise Failure(f"unknown param `{unknown[0]}`", False)
    url = params.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise Failure(f"param `url` must be an http(s) URL, got {json.dumps(url)}", False)
    retry_ms = params.get("retry_ms", 5000)
    if not isinstance(retry_ms, int) or isinstance(retry_ms, bool) or retry_ms < 100:
        raise Failure(f"param `retry_ms` must be an integer >= 100, got {json.dumps(retry_ms)}", False)
    field = params.get("field", "status")
    if not isinstance(field, str) or not field:
        raise Failure("param `field` must be a non-empty string", False)
    secret = params.get("token_secret")
    if secret is not None and not isinstance(secret, str):
        raise Failure("param `token_secret` must be a secret name", False)
    params.update(url=url, field=field, retry_ms=retry_ms, expect=params.get("expect", "ok"))
    return params


def lookup(document, field: str, url: str):
    value = document
    for part in field.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise Failure(f"GET {url}: the answer has no field `{field}`: {excerpt(json.dumps(document).encode())}", False)
    return value


def same(a, b) -> bool:
    """JSON equality: in Python `True == 1`, in JSON they differ."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def excerpt(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace").strip()
    return text + ("..." if len(body) > 200 else "")


def get(url: str, headers: list) -> tuple:
    """One GET over wasi:http with the blocking wasi:io calls: a step makes a
    request or two, so no event loop is needed. Returns (status, body)."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        fields = http.Fields.from_list(headers)
    except Err:
        # Names only: a header value may hold the token.
        raise Failure(f"headers rejected: {', '.join(n for n, _ in headers)}", False)
    try:
        request = http.OutgoingRequest(fields)
        request.set_method(http.Method_Get())
        request.set_scheme(http.Scheme_Https() if parts.scheme == "https" else http.Scheme_Http())
        request.set_authority(parts.netloc)
        request.set_path_with_query(path)
    except Err:
        raise Failure(f"param `url` is not a valid URL: {url}", False)
    body = request.body()

    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        raise send_failure(url, e.value)
    # A GET has no body: finish it. The host may already have refused the
    # request, in which case finishing fails; the response says why.
    try:
        http.OutgoingBody.finish(body, None)
    except Err:
        pass

    with future:
        with future.subscribe() as ready:
            ready.block()
        answer = future.get()
    # get() -> Ok(Ok(response)) | Ok(Err(error-code)) | Err(()) (already taken).
    if answer is None or isinstance(answer, Err):
        raise Failure(f"GET {url}: no response from the host", True)
    if isinstance(answer.value, Err):
        raise send_failure(url, answer.value.value)

    with answer.value.value as response:
        status = response.status()
        incoming = response.consume()
        data = bytearray()
        # The stream is a child of the body: it must go first.
        with incoming.stream() as stream:
            while len(data) < MAX_BODY:
                try:
                    data += stream.blocking_read(64 * 1024)
                except Err as e:
                    if isinstance(e.value, streams.StreamError_Closed):
                        break
                    raise Failure(f"GET {url}: reading the answer failed", True)
        http.IncomingBody.finish(incoming).__exit__(None, None, None)
    return status, bytes(data[:MAX_BODY])


def send_failure(url: str, code) -> Failure:
    """No response. The host's refusal is final; anything else (refused,
    reset, DNS, timeout) may clear up on another attempt."""
    if isinstance(code, http.ErrorCode_HttpRequestDenied):
        return Failure(f"GET {url} denied by medic: the host is not in this step's `allow:` list", False)
    return Failure(f"GET {url} failed: {type(code).__name__.removeprefix('ErrorCode_')}", True)
