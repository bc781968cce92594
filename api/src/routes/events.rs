//! `GET /v1/tasks/{id}/events`: a task's events as server-sent events, followed live by
//! polling the store (the events table is the only infrastructure).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use store::Store;
use utoipa::IntoParams;
use workflows::TaskStatus;

use crate::SharedState;
use crate::dto::TaskEventView;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};

/// How often a follower asks the store for new events.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Events read per query.
const PAGE: u64 = 200;
/// The `event:` of the stream's last message once the task has ended; its data is
/// `{"status": <final status>}` and it has no id.
pub const END_EVENT: &str = "end";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Keep the stream open for new events until the task ends (default `true`); `false`
    /// ends it once the events so far are sent.
    pub follow: Option<bool>,
}

/// Follow a task's events (server-sent events).
///
/// Status changes, the agent's output lines (bounded, secrets redacted), check results,
/// review requests and decisions, oldest first. Each event's `id:` is its id and its `event:`
/// its kind; its `data:` is the JSON below. Send the last id back as `Last-Event-ID` to resume
/// after it. Once the task has ended, a last message `event: end` (no id) with
/// `data: {"status": <final status>}` closes the stream; a stream that closes without it was
/// broken, and resuming is safe.
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}/events",
    tag = super::TASKS,
    params(
        ("id" = String, Path, description = "Task id"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id"),
        EventsQuery,
    ),
    responses(
        (status = 200, description = "The task's events, as `text/event-stream`; each `data:` is one TaskEventView",
            content_type = "text/event-stream", body = TaskEventView),
        (status = 400, description = "Last-Event-ID is not an event id, or a bad parameter", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
    ),
)]
pub async fn task_events(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let after = last_event_id(&headers)?;
    if state.store.task_status(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("task {id} not found")));
    }
    let follower = Follower {
        store: state.store.clone(),
        task_id: id,
        after,
        follow: query.follow.unwrap_or(true),
        ready: VecDeque::new(),
        done: false,
    };
    let stream = futures::stream::unfold(follower, |mut follower| async move {
        let message = follower.next().await?;
        Some((Ok(to_sse(message)), follower))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn last_event_id(headers: &HeaderMap) -> Result<i64, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(0);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|id| *id >= 0)
        .ok_or_else(|| {
            ApiError::bad_parameter(
                "Last-Event-ID",
                "Last-Event-ID must be the id of an event (a non-negative integer)",
            )
        })
}

fn to_sse(message: Message) -> Event {
    let (sse, encoded) = match message {
        Message::Event(event) => {
            let sse = Event::default()
                .id(event.id.to_string())
                .event(event.kind());
            (sse.clone(), sse.json_data(&event))
        }
        Message::End(status) => {
            let sse = Event::default().event(END_EVENT);
            (
                sse.clone(),
                sse.json_data(serde_json::json!({"status": status})),
            )
        }
    };
    encoded.unwrap_or_else(|err| {
        tracing::error!(error = %err, "cannot encode a task event");
        sse.comment("an event could not be encoded")
    })
}

/// What the stream sends: a task's event, or that the task has ended.
enum Message {
    Event(TaskEventView),
    End(TaskStatus),
}

/// Reads a task's events in order, waiting for more until the task has ended.
struct Follower {
    store: Store,
    task_id: String,
    after: i64,
    follow: bool,
    ready: VecDeque<TaskEventView>,
    done: bool,
}

impl Follower {
    /// None ends the stream: after `end`, when caught up without following, or when the
    /// store failed (the client resumes with its last id).
    async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.after = event.id;
                return Some(Message::Event(event));
            }
            if self.done {
                return None;
            }
            if self.fetch().await? {
                continue;
            }
            let status = match self.store.task_status(&self.task_id).await {
                Ok(status) => status,
                Err(err) => return self.failed(&err),
            };
            match status {
                Some(status) if status.is_final() => {
                    // The final status and its event were written in one transaction, so a
                    // read after seeing the status final finds whatever is left.
                    if self.fetch().await? {
                        continue;
                    }
                    self.done = true;
                    return Some(Message::End(status));
                }
                Some(_) if self.follow => tokio::time::sleep(POLL_EVERY).await,
                _ => return None,
            }
        }
    }

    /// One page of events into `ready`; whether there was any.
    async fn fetch(&mut self) -> Option<bool> {
        match self
            .store
            .events_since(&self.task_id, self.after, PAGE)
            .await
        {
            Ok(events) => {
                self.ready
                    .extend(events.into_iter().map(TaskEventView::from));
                Some(!self.ready.is_empty())
            }
            Err(err) => self.failed(&err),
        }
    }

    fn failed<T>(&self, err: &store::StoreError) -> Option<T> {
        tracing::warn!(task_id = %self.task_id, error = %crate::error::chain(err), "event stream ended: the store failed");
        None
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn last_event_ids_are_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(last_event_id(&headers).unwrap(), 0);
        headers.insert("last-event-id", HeaderValue::from_static("42"));
        assert_eq!(last_event_id(&headers).unwrap(), 42);
        for bad in ["x", "-1", ""] {
            headers.insert("last-event-id", HeaderValue::from_static(bad));
            let err = last_event_id(&headers).unwrap_err();
            assert_eq!(
                (err.code, err.field.as_deref()),
                ("invalid_parameter", Some("Last-Event-ID")),
                "{bad}"
            );
        }
    }
}
