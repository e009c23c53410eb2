// `{{name}}`: a medic step in JavaScript.
//
// medic calls `describe()` when it validates a workflow and `run()` once per attempt,
// in a fresh sandboxed instance. componentize-js turns this module into a component
// against wit/ (medic:step@{{wit}}): the exported `step` object implements the step.
// WIT records are objects with camelCase fields, u64 values are BigInt, a variant is
// `{ tag, val }`, and returning `{ tag: 'err', val }` is the `result`'s error case.
// See README.md.

import { log, annotate, stateSet } from 'medic:step/host@{{wit}}';

const VERSION = '0.1.0';

// JSON Schema of the `with:` params; `medic validate` checks workflows against it.
const PARAMS_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: '{{name}} params',
  type: 'object',
  required: ['message'],
  properties: {
    message: { type: 'string', minLength: 1, description: 'What to put on the incident timeline' },
  },
  additionalProperties: false,
};

// Bad params will not get better by retrying.
function refuse(message) {
  return { tag: 'err', val: { message, retryable: false } };
}

export const step = {
  describe() {
    // Must be cheap and must not call the host.
    return {
      name: '{{name}}',
      version: VERSION,
      summary: 'Put a message on the incident timeline',
      paramsSchema: JSON.stringify(PARAMS_SCHEMA),
      // Hosts this step calls and secrets it reads, when they are fixed.
      capabilities: { hosts: [], secrets: [] },
    };
  },

  run(invocation) {
    let params;
    try {
      params = JSON.parse(invocation.params);
    } catch (e) {
      return refuse(`params are not JSON: ${e.message}`);
    }
    const message = params && params.message;
    if (typeof message !== 'string' || message === '') {
      return refuse('params.message must be a non-empty string');
    }
    // A step that waits should stop before the attempt's deadline and ask for
    // another attempt rather than be killed.
    if (invocation.deadlineMs < 1000n) {
      return {
        tag: 'ok',
        val: { tag: 'retry-after', val: { ms: 5000n, reason: 'less than 1 s left in this attempt' } },
      };
    }
    log('info', `echoing the message for ${invocation.incident.title}`);
    annotate(`{{name}}: ${message}`);
    // Durable across attempts of this step in this run.
    stateSet('last_message', message);
    const output = {
      echo: message,
      incident: invocation.incident.title,
      attempt: invocation.attempt,
      deadline_ms: Number(invocation.deadlineMs),
    };
    return { tag: 'ok', val: { tag: 'done', val: JSON.stringify(output) } };
  },
};
