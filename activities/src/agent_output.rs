//! What of a sandboxed command's output leaves the worker while and after it runs: progress
//! for heartbeats, the agent's latest line as `agent_output` events, the outcome's tail, all
//! with secrets masked (see `redact`).

use store::{Store, TaskEventData};

use crate::output::LAST_LINE_MAX_BYTES;
use crate::redact::worker_redactor;
use crate::sandbox::{Outcome, Progress, SandboxSpec};

/// A line this close to the cap was probably cut, so its last word may be part of a secret.
const CUT_LINE_SLACK_BYTES: usize = 4;

/// The progress with its last line redacted, fit for a heartbeat or an event.
pub fn redacted_progress(progress: Progress) -> Progress {
    let cut = progress.last_line.len() + CUT_LINE_SLACK_BYTES >= LAST_LINE_MAX_BYTES;
    let mut line = worker_redactor().redact_cut(&progress.last_line, false, cut);
    // Masking can lengthen a line; keep the bound.
    if line.len() > LAST_LINE_MAX_BYTES {
        let mut end = LAST_LINE_MAX_BYTES;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    Progress {
        last_line: line,
        ..progress
    }
}

/// The outcome with its output tail redacted.
pub fn redacted_outcome(outcome: Outcome) -> Outcome {
    Outcome {
        output_tail: redacted_tail(&outcome.output_tail, outcome.output_bytes),
        ..outcome
    }
}

/// A tail of `output_bytes` of output, redacted; a tail shorter than the output was cut.
fn redacted_tail(tail: &str, output_bytes: u64) -> String {
    let cut_front = output_bytes > tail.len() as u64;
    worker_redactor().redact_cut(tail, cut_front, false)
}

/// Sends the agent's latest output line as an event whenever it changed.
#[derive(Debug)]
pub struct AgentOutputEvents {
    task_id: String,
    round: u32,
    last_sent: String,
}

impl AgentOutputEvents {
    /// For an agent run, whose environment names its task and round; None for a check.
    pub fn for_spec(spec: &SandboxSpec) -> Option<AgentOutputEvents> {
        AgentOutputEvents::for_env(&spec.env)
    }

    fn for_env(env: &[(String, String)]) -> Option<AgentOutputEvents> {
        let var = |name: &str| {
            env.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        Some(AgentOutputEvents {
            task_id: var("ERRAND_TASK_ID")?,
            round: var("ERRAND_ROUND")?.parse().ok()?,
            last_sent: String::new(),
        })
    }

    /// Appends an event if the (already redacted) last line changed. Progress is best effort:
    /// a failed write is logged and never fails the agent's run.
    pub async fn observe(&mut self, store: &Store, progress: &Progress) {
        let line = progress.last_line.trim_end();
        if line.is_empty() || line == self.last_sent {
            return;
        }
        let event = TaskEventData::AgentOutput {
            round: self.round,
            line: line.to_string(),
            elapsed_ms: progress.elapsed_ms,
            output_bytes: progress.output_bytes,
        };
        match store.append_event(&self.task_id, &event).await {
            Ok(()) => self.last_sent = line.to_string(),
            Err(err) => tracing::warn!(
                task_id = %self.task_id,
                round = self.round,
                error = %err,
                "cannot record the agent's output"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_agent_runs_send_output_events() {
        let agent = env(&[("ERRAND_TASK_ID", "t1"), ("ERRAND_ROUND", "2")]);
        let events = AgentOutputEvents::for_env(&agent).unwrap();
        assert_eq!((events.task_id.as_str(), events.round), ("t1", 2));
        assert!(AgentOutputEvents::for_env(&env(&[])).is_none());
        assert!(AgentOutputEvents::for_env(&env(&[("ERRAND_TASK_ID", "t1")])).is_none());
    }

    #[test]
    fn token_shapes_never_leave_in_progress_or_outcomes() {
        let token = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
        let progress = redacted_progress(Progress {
            elapsed_ms: 1,
            output_bytes: 2,
            last_line: format!("pushing with {token}"),
        });
        assert_eq!(progress.last_line, "pushing with [redacted]");
        let whole = format!("{token}\nok\n");
        assert_eq!(
            redacted_tail(&whole, whole.len() as u64),
            "[redacted]\nok\n"
        );
        // A tail that was cut loses its first word, whatever it was.
        assert_eq!(redacted_tail(&whole, 100), "\nok\n");
    }

    #[test]
    fn a_line_at_the_cap_loses_its_cut_last_word() {
        let line = format!("{} ghp_0123", "x".repeat(LAST_LINE_MAX_BYTES - 9));
        let progress = redacted_progress(Progress {
            elapsed_ms: 1,
            output_bytes: 2,
            last_line: line,
        });
        assert!(
            !progress.last_line.contains("ghp_"),
            "{}",
            progress.last_line
        );
    }
}
