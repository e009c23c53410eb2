//! `chat-matrix`: a communicate-phase step that posts to a Matrix room or opens a war room,
//! through the client-server API of any homeserver (Synapse, Dendrite, Conduit, ...).
//!
//! Parsing, paths and error interpretation live in [`matrix`], which is pure and unit-tested
//! on the host; `medic_step::http` does HTTP over wasi:http; this file wires them to the
//! medic host (secret, state, log, annotate).

mod matrix;

use matrix::{Action, Params, Post, WarRoom};
use medic_step::host::{self, Level};
use medic_step::http::{self, Limits, Method, Reply, Request, SendError};
use medic_step::{Failure, Invocation, Outcome, Step};
use serde_json::{Value, json};

struct ChatMatrix;

impl Step for ChatMatrix {
    type Params = matrix::Raw;
    const NAME: &'static str = "chat-matrix";
    const SUMMARY: &'static str =
        "Post to a Matrix room, or open a war room (name, topic, invites)";
    // The homeserver and the secret's name come from params: the workflow grants them.
    const PARAMS_SCHEMA: &'static str = matrix::PARAMS_SCHEMA;

    async fn run(raw: matrix::Raw, invocation: &Invocation) -> Result<Outcome, Failure> {
        let params = Params::check(raw)?;
        let token = host::secret(&params.token_secret).ok_or_else(|| {
            Failure::fatal(format!(
                "secret `{}` (param `token_secret`) is not available: list it in the step's \
                 `secrets:` and configure it",
                params.token_secret
            ))
        })?;
        let session = Session {
            homeserver: &params.homeserver,
            auth: format!("Bearer {token}"),
        };
        let key = &invocation.idempotency_key;
        let output = match &params.action {
            Action::Post(post) => session.post(post, key).await?,
            Action::OpenWarRoom(room) => session.open_war_room(room, key).await?,
        };
        Ok(Outcome::Done(output))
    }
}

medic_step::export_step!(ChatMatrix);

/// Requests to one homeserver with one access token.
struct Session<'a> {
    homeserver: &'a str,
    auth: String,
}

impl Session<'_> {
    async fn post(&self, post: &Post, idempotency_key: &str) -> Result<Value, Failure> {
        let room_id = self.resolve_room(&post.room).await?;
        let txn_id = matrix::txn_id(idempotency_key);
        let what = format!("posting to room {}", post.room);
        let body = matrix::message_body(post).to_string();
        let path = matrix::send_path(&room_id, &txn_id);
        let reply = self.call(Method::Put, &path, &body, &what).await?;
        let event_id = matrix::answer_field(&reply.body, "event_id", &what)?;
        host::log(
            Level::Info,
            &format!("posted event {event_id} to room {room_id} (transaction {txn_id})"),
        );
        host::annotate(&format!("chat-matrix: posted to {}", post.room));
        Ok(json!({"room_id": room_id, "event_id": event_id, "txn_id": txn_id}))
    }

    /// A room id is used as is; an alias is looked up in the room directory.
    async fn resolve_room(&self, room: &str) -> Result<String, Failure> {
        if !room.starts_with('#') {
            return Ok(room.to_owned());
        }
        let what = format!("resolving room alias {room}");
        let reply = self
            .call(Method::Get, &matrix::alias_path(room), "", &what)
            .await?;
        matrix::answer_field(&reply.body, "room_id", &what)
    }

    async fn open_war_room(&self, room: &WarRoom, idempotency_key: &str) -> Result<Value, Failure> {
        let local = matrix::war_room_alias(room, idempotency_key);
        let alias = self.full_alias(&local).await?;
        // A previous attempt of this step (a retry after a later failure) created the room
        // already: reuse it rather than open a second one.
        let (room_id, created) = match host::state_get(matrix::ROOM_STATE_KEY) {
            Some(room_id) => {
                host::log(
                    Level::Info,
                    &format!("reusing war room {room_id} created by an earlier attempt"),
                );
                (room_id, false)
            }
            None => {
                let what = format!("creating war room {:?}", room.name);
                let body = matrix::create_room_body(room, &local, idempotency_key).to_string();
                let reply = self
                    .send(Method::Post, matrix::CREATE_ROOM_PATH, &body, &what)
                    .await?;
                let found = if (200..300).contains(&reply.status) {
                    (matrix::answer_field(&reply.body, "room_id", &what)?, true)
                } else if matrix::errcode(&reply.body).as_deref() == Some("M_ROOM_IN_USE") {
                    // The alias exists: ours if an earlier send of this very request created
                    // the room (its answer lost to a crash), someone else's otherwise.
                    (self.own_room(&alias, idempotency_key, &reply).await?, true)
                } else {
                    return Err(self.refusal(&what, &reply));
                };
                host::state_set(matrix::ROOM_STATE_KEY, &found.0);
                found
            }
        };
        if created {
            let invited = room.invite.join(", ");
            let mut note = format!(
                "chat-matrix: war room {:?} is {alias} ({room_id})",
                room.name
            );
            if !invited.is_empty() {
                note.push_str(&format!("; invited {invited}"));
            }
            host::annotate(&note);
        }
        Ok(json!({
            "room_id": room_id,
            "alias": alias,
            "name": room.name,
            "invited": room.invite,
            "created": created,
        }))
    }

    /// The room `alias` points at, if this step created it (its creation content carries our
    /// idempotency key); otherwise the alias is taken and creation fails.
    async fn own_room(
        &self,
        alias: &str,
        idempotency_key: &str,
        in_use: &Reply,
    ) -> Result<String, Failure> {
        let room_id = self.resolve_room(alias).await?;
        let what = format!("checking who created room {alias}");
        let path = matrix::create_event_path(&room_id);
        let reply = self.send(Method::Get, &path, "", &what).await?;
        let ours = (200..300).contains(&reply.status)
            && serde_json::from_slice::<Value>(&reply.body)
                .ok()
                .and_then(|v| v.get(matrix::CREATION_KEY).cloned())
                .is_some_and(|k| k == idempotency_key);
        if ours {
            host::log(
                Level::Info,
                &format!(
                    "war room {alias} ({room_id}) was created by an earlier send of this step"
                ),
            );
            Ok(room_id)
        } else {
            Err(self.refusal(&format!("creating war room with alias {alias}"), in_use))
        }
    }

    /// `#local:server`, with the server name of the bot's own user id: createRoom puts aliases
    /// on the homeserver's domain, which the base URL does not necessarily show.
    async fn full_alias(&self, local: &str) -> Result<String, Failure> {
        let what = "looking up the bot's user id";
        let reply = self
            .call(Method::Get, matrix::WHOAMI_PATH, "", what)
            .await?;
        let user_id = matrix::answer_field(&reply.body, "user_id", what)?;
        let server = matrix::server_name(&user_id)
            .ok_or_else(|| Failure::transient(format!("{what}: `{user_id}` has no server name")))?;
        Ok(format!("#{local}:{server}"))
    }

    /// One authenticated request; a non-2xx answer becomes a [`Failure`] naming `what`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: &str,
        what: &str,
    ) -> Result<Reply, Failure> {
        let reply = self.send(method, path, body, what).await?;
        if (200..300).contains(&reply.status) {
            Ok(reply)
        } else {
            Err(self.refusal(what, &reply))
        }
    }

    fn refusal(&self, what: &str, reply: &Reply) -> Failure {
        matrix::refusal(
            what,
            reply.status,
            &reply.body,
            reply.retry_after.as_deref(),
        )
    }

    /// One authenticated request, whatever the answer's status.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: &str,
        what: &str,
    ) -> Result<Reply, Failure> {
        let url = format!("{}{path}", self.homeserver);
        let mut headers = vec![("authorization", self.auth.as_str())];
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        // No body and no length on a bare GET; `content-length: 0` on an empty PUT or POST,
        // which some servers refuse without one (411).
        let sends_body = !body.is_empty() || !matches!(method, Method::Get);
        let request = Request {
            method,
            url: &url,
            headers: &headers,
            body: sends_body.then_some(body.as_bytes()),
        };
        http::send(&request, Limits::body(matrix::MAX_BODY_BYTES))
            .await
            .map_err(|e| self.send_failure(what, e))
    }

    /// A request that got no answer. Denial by the allow list is final; anything else
    /// (refused, reset, DNS, timeout) may clear up on a later attempt.
    fn send_failure(&self, what: &str, error: SendError) -> Failure {
        http::send_failure(error, "homeserver", self.homeserver).context(what)
    }
}
