// `statuspage-update`: a communicate-phase step in JavaScript.
//
// POSTs an incident update (status + message) to a status page API with a
// bearer token from a granted secret and the invocation's idempotency key, so
// the provider can drop the duplicates that retries create. When the status
// page is busy (429 or 5xx) it asks medic for another attempt, honouring
// `Retry-After`, and counts the deferrals in step state (durable across
// attempts); every outcome goes on the incident timeline.
//
// componentize-js turns this module into a component: the exported `step`
// object implements the WIT interface `medic:step/step` (scripts/build-polyglot).
// `fetch()` is StarlingMonkey's, over wasi:http.

import {
  annotate,
  log,
  secret,
  stateGet,
  stateSet,
} from "medic:step/host@0.1.0";

const VERSION = "0.1.0";
const STATUSES = ["investigating", "identified", "monitoring", "resolved"];

const PARAMS_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  additionalProperties: false,
  required: ["url", "status"],
  properties: {
    url: {
      type: "string",
      pattern: "^https?://",
      description: "Status page endpoint that accepts incident updates (POST, JSON)",
    },
    status: { enum: STATUSES, description: "The incident's public status" },
    message: {
      type: "string",
      description: "What readers see; defaults to the incident title",
    },
    token_secret: {
      type: "string",
      description: "Name of a granted secret sent as `Authorization: Bearer`",
    },
  },
};

// Ends the attempt with a step error (what medic puts on the timeline).
class Failure extends Error {
  constructor(message, retryable) {
    super(message);
    this.retryable = retryable;
  }
}

export const step = {
  // Must not call the host: `medic validate` runs this without a run.
  describe() {
    return {
      name: "statuspage-update",
      version: VERSION,
      summary: "Post an incident update to a status page (bearer token, idempotency key)",
      paramsSchema: JSON.stringify(PARAMS_SCHEMA),
      // The host comes from `url`, so the workflow grants it (`allow:`).
      capabilities: { hosts: [], secrets: [] },
    };
  },

  // componentize-js runs the event loop until the promise settles; a thrown
  // value becomes the `result`'s error case, so it must be a `step-error`.
  async run(invocation) {
    try {
      return await post(invocation);
    } catch (e) {
      const failure =
        e instanceof Failure ? e : new Failure(`unexpected: ${e}`, false);
      annotate(`statuspage-update failed: ${failure.message}`);
      throw { message: failure.message, retryable: failure.retryable };
    }
  },
};

async function post(invocation) {
  const params = parseParams(invocation.params);
  const { url, status } = params;
  const message = params.message ?? invocation.incident.title;

  const headers = {
    "content-type": "application/json",
    accept: "application/json",
    "idempotency-key": invocation.idempotencyKey,
  };
  if (params.token_secret !== undefined) {
    const token = secret(params.token_secret);
    if (token === undefined) {
      throw new Failure(
        `secret ${params.token_secret} is not available to this step (grant it with \`secrets: [${params.token_secret}]\`)`,
        false,
      );
    }
    headers.authorization = `Bearer ${token}`;
  }
  const body = JSON.stringify({
    status,
    message,
    incident: {
      id: invocation.incident.id,
      title: invocation.incident.title,
      severity: invocation.incident.severity,
    },
  });

  let response;
  try {
    response = await fetch(url, { method: "POST", headers, body });
  } catch (e) {
    // A request medic refused (host not in `allow:`) looks like any network
    // failure here: "TypeError: NetworkError". medic records the real reason
    // on the timeline and fails the attempt with it.
    throw new Failure(`POST ${url} failed: ${e}`, true);
  }
  const text = await response.text();
  log("info", `POST ${url} -> ${response.status} (${text.length} bytes)`);

  // Durable across attempts of this step in this run.
  const deferrals = Number(stateGet("deferrals") ?? "0");
  if (response.status === 429 || response.status >= 500) {
    const ms = retryAfterMs(response.headers.get("retry-after"));
    stateSet("deferrals", String(deferrals + 1));
    annotate(
      `status page busy (HTTP ${response.status}), trying again in ${ms} ms (deferral ${deferrals + 1})`,
    );
    return {
      tag: "retry-after",
      val: {
        ms: BigInt(ms),
        reason: `status page answered HTTP ${response.status}: ${excerpt(text)}`,
      },
    };
  }
  if (!response.ok) {
    throw new Failure(
      `POST ${url} answered HTTP ${response.status}: ${excerpt(text)}`,
      false,
    );
  }

  let updateId = null;
  try {
    updateId = JSON.parse(text).id ?? null;
  } catch {
    // Some status pages answer 204 or plain text: the update still went out.
  }
  if (updateId !== null) {
    stateSet("update_id", String(updateId));
  }
  annotate(
    `status page now says "${status}"${updateId === null ? "" : ` (update ${updateId})`}`,
  );
  return {
    tag: "done",
    val: JSON.stringify({
      posted: true,
      status,
      http_status: response.status,
      update_id: updateId,
      deferrals,
    }),
  };
}

function parseParams(text) {
  let params;
  try {
    params = JSON.parse(text || "{}");
  } catch (e) {
    throw new Failure(`params are not JSON: ${e.message}`, false);
  }
  if (params === null || typeof params !== "object" || Array.isArray(params)) {
    throw new Failure("params must be an object", false);
  }
  const unknown = Object.keys(params).filter(
    (k) => !(k in PARAMS_SCHEMA.properties),
  );
  if (unknown.length > 0) {
    throw new Failure(`unknown param \`${unknown[0]}\``, false);
  }
  if (typeof params.url !== "string" || !/^https?:\/\//.test(params.url)) {
    throw new Failure(
      `param \`url\` must be an http(s) URL, got ${JSON.stringify(params.url)}`,
      false,
    );
  }
  if (!STATUSES.includes(params.status)) {
    throw new Failure(
      `param \`status\` must be one of ${STATUSES.join(", ")}, got ${JSON.stringify(params.status)}`,
      false,
    );
  }
  for (const key of ["message", "token_secret"]) {
    if (params[key] !== undefined && typeof params[key] !== "string") {
      throw new Failure(`param \`${key}\` must be a string`, false);
    }
  }
  return params;
}

// `Retry-After` in seconds; an HTTP date or nothing means the default.
function retryAfterMs(header) {
  const seconds = Number(header);
  if (header !== null && Number.isFinite(seconds) && seconds >= 0) {
    return Math.min(Math.round(seconds * 1000), 10 * 60 * 1000);
  }
  return 5000;
}

function excerpt(text) {
  const trimmed = text.trim();
  return trimmed.length > 200 ? `${trimmed.slice(0, 200)}...` : trimmed;
}
