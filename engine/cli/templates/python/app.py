"""`{{name}}`: a medic step in Python.

medic calls `describe()` when it validates a workflow and `run()` once per attempt,
in a fresh sandboxed instance. componentize-py turns this module into a component:
the class named after the exported interface (`Step`) implements the step. The
`wit_world` package is generated from wit/ (medic:step@{{wit}}) at build time.
See README.md.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
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

# JSON Schema of the `with:` params; `medic validate` checks workflows against it.
PARAMS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "{{name}} params",
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {
            "type": "string",
            "minLength": 1,
            "description": "What to put on the incident timeline",
        },
    },
    "additionalProperties": False,
}


class Step(exports.Step):
    def describe(self) -> Manifest:
        # Must be cheap and must not call the host.
        return Manifest(
            name="{{name}}",
            version=VERSION,
            summary="Put a message on the incident timeline",
            params_schema=json.dumps(PARAMS_SCHEMA),
            # Hosts this step calls and secrets it reads, when they are fixed.
            capabilities=Capabilities(hosts=[], secrets=[]),
        )

    def run(self, invocation: Invocation) -> Outcome:
        try:
            params = json.loads(invocation.params)
        except ValueError as e:
            raise Err(StepError(message=f"params are not JSON: {e}", retryable=False))
        message = params.get("message") if isinstance(params, dict) else None
        if not isinstance(message, str) or not message:
            # Bad params will not get better by retrying.
            raise Err(
                StepError(
                    message="params.message must be a non-empty string", retryable=False
                )
            )
        # A step that waits should stop before the attempt's deadline and ask for
        # another attempt rather than be killed.
        if invocation.deadline_ms < 1000:
            return Outcome_RetryAfter(
                RetryAfter(ms=5000, reason="less than 1 s left in this attempt")
            )
        host.log(Level.INFO, f"echoing the message for {invocation.incident.title}")
        host.annotate(f"{{name}}: {message}")
        # Durable across attempts of this step in this run.
        host.state_set("last_message", message)
        output = {
            "echo": message,
            "incident": invocation.incident.title,
            "attempt": invocation.attempt,
            "deadline_ms": invocation.deadline_ms,
        }
        return Outcome_Done(json.dumps(output))
