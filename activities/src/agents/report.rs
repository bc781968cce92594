//! Folding an agent's output lines into its report: usage summed (or its own total), cost,
//! models, summary and why it stopped. The lines are untrusted, so everything here is bounded:
//! over-long lines are skipped unread, sums saturate, and the texts kept are cut and redacted.

use std::path::Path;

use workflows::contracts::{AgentReport, OUTPUT_TAIL_BYTES};
use workflows::cost::{MicroDollars, Usage};

use super::{AgentAdapter, AgentEvent, ReportedTotal};
use crate::redact::worker_redactor;
use crate::sandbox::LOG_CAP_BYTES;
use crate::sandbox::host_read;

/// A line longer than this is not parsed (an event is far shorter; a tool result the agent
/// echoed is not an event we read).
pub const MAX_EVENT_LINE_BYTES: usize = 1 << 20;
/// Models kept in a report; an agent naming more is not telling us anything useful.
const MAX_MODELS: usize = 8;
const MAX_MODEL_NAME_BYTES: usize = 128;
const MAX_STOPPED_BYTES: usize = 512;

/// The events of a run, folded as they arrive.
#[derive(Debug, Default)]
pub struct Report {
    summed: Usage,
    summed_cost: Option<MicroDollars>,
    calls: u64,
    total: Option<ReportedTotal>,
    models: Vec<String>,
    summary: Option<String>,
    stopped: Option<String>,
    /// Lines that were too long to read.
    pub skipped_lines: u64,
    /// Progress messages seen (they go to people while the agent runs, not into the report).
    pub progress: u64,
}

impl Report {
    pub fn observe(&mut self, event: AgentEvent) {
        match event {
            AgentEvent::Progress(_) => self.progress += 1,
            AgentEvent::Usage(call) => {
                self.summed = saturating_add(self.summed, call.usage);
                if let Some(cost) = call.cost {
                    self.summed_cost = Some(self.summed_cost.unwrap_or_default() + cost);
                }
                self.calls = self.calls.saturating_add(1);
                self.note_models(call.model);
            }
            AgentEvent::Total(total) => {
                self.note_models(total.models.iter().cloned());
                self.total = Some(total);
            }
            AgentEvent::Summary(text) => self.summary = Some(text),
            AgentEvent::Stopped(reason) => self.stopped = Some(reason),
        }
    }

    fn note_models(&mut self, models: impl IntoIterator<Item = String>) {
        for model in models {
            let model = cut(model.trim(), MAX_MODEL_NAME_BYTES);
            if !model.is_empty() && self.models.len() < MAX_MODELS && !self.models.contains(&model)
            {
                self.models.push(model);
            }
        }
    }

    /// Reads every complete or final line of `output` with `adapter`.
    pub fn read(&mut self, adapter: &dyn AgentAdapter, output: &[u8]) {
        for line in output.split(|&b| b == b'\n') {
            if line.len() > MAX_EVENT_LINE_BYTES {
                self.skipped_lines += 1;
                continue;
            }
            let line = String::from_utf8_lossy(line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            for event in adapter.parse_line(line) {
                self.observe(event);
            }
        }
    }

    /// The report, or None when the agent reported neither usage nor a summary nor a stop.
    /// Texts are redacted here: the report leaves the worker in the activity's result.
    pub fn finish(self) -> Option<AgentReport> {
        let reported_usage = self.total.is_some() || self.calls > 0;
        if !reported_usage && self.summary.is_none() && self.stopped.is_none() {
            return None;
        }
        let (usage, cost, calls) = match self.total {
            Some(total) => (total.usage, total.cost, total.calls.max(self.calls)),
            None => (self.summed, self.summed_cost, self.calls),
        };
        let redactor = worker_redactor();
        Some(AgentReport {
            usage,
            cost,
            models: self
                .models
                .iter()
                .map(|m| redactor.redact(m).into_owned())
                .collect(),
            calls,
            summary: self
                .summary
                .map(|text| cut(&redactor.redact(text.trim()), OUTPUT_TAIL_BYTES)),
            stopped: self
                .stopped
                .map(|text| cut(&redactor.redact(text.trim()), MAX_STOPPED_BYTES)),
        })
    }
}

/// The report of one run's whole output.
pub fn summarize(adapter: &dyn AgentAdapter, output: &[u8]) -> Option<AgentReport> {
    let mut report = Report::default();
    report.read(adapter, output);
    report.finish()
}

/// The report of a finished run from its log `log_name` in `dir` (read without following
/// symlinks, at most `LOG_CAP_BYTES`). The log keeps only the first bytes of a chatty run, so
/// when the output was longer than the log and the tail, the tail's complete lines (where a
/// final `result` event usually is) are read too. A log that cannot be read gives no report:
/// the agent's own account is a nicety, never a reason to fail the run.
pub async fn report_from_log(
    spec: &workflows::AgentSpec,
    dir: &Path,
    log_name: &str,
    output_bytes: u64,
    output_tail: &str,
) -> Option<AgentReport> {
    let adapter = super::adapter(spec);
    let dir = dir.to_owned();
    let log_name = log_name.to_owned();
    let tail = output_tail.to_owned();
    let joined = tokio::task::spawn_blocking(move || {
        let log = match host_read::read_bytes(&dir, Path::new(&log_name), LOG_CAP_BYTES) {
            Ok(log) => log,
            Err(err) => {
                tracing::warn!(error = %err, "reading the agent log for its events failed");
                return None;
            }
        };
        let mut report = Report::default();
        report.read(adapter.as_ref(), &log);
        let unseen = output_bytes.saturating_sub(log.len() as u64);
        if unseen > tail.len() as u64 {
            // The tail starts mid-line; its first piece is not a whole event.
            if let Some((_, whole_lines)) = tail.split_once('\n') {
                report.read(adapter.as_ref(), whole_lines.as_bytes());
            }
        }
        if report.skipped_lines > 0 {
            tracing::debug!(
                skipped = report.skipped_lines,
                "agent output lines too long to read"
            );
        }
        report.finish()
    })
    .await;
    joined.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "reading the agent log for its events panicked");
        None
    })
}

fn saturating_add(a: Usage, b: Usage) -> Usage {
    Usage {
        input_tokens: a.input_tokens.saturating_add(b.input_tokens),
        output_tokens: a.output_tokens.saturating_add(b.output_tokens),
        cache_read_tokens: a.cache_read_tokens.saturating_add(b.cache_read_tokens),
        cache_write_tokens: a.cache_write_tokens.saturating_add(b.cache_write_tokens),
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
