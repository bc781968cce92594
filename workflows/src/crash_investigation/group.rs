//! Counting a crash group's occurrences and deciding its next step, as pure functions the
//! workflow calls (and tests call without Temporal).

use crate::crash_contracts::{
    CrashGroup, CrashGroupStatus, LinkedTask, Occurrence, RecordedOccurrence,
};
use crate::task::TaskStatus;

/// Distinct releases and environments kept per group: enough to see a spread, bounded so a
/// group with a release per build cannot grow without end.
pub const MAX_DISTINCT_VALUES: usize = 50;

/// A group that has seen nothing yet.
pub fn empty_group(id: &str, service: &str, fingerprint: &crate::crash::Fingerprint) -> CrashGroup {
    CrashGroup {
        id: id.to_string(),
        service: service.to_string(),
        fingerprint: fingerprint.hash.clone(),
        title: fingerprint.title.clone(),
        language: fingerprint.language.as_str().to_string(),
        crash_type: fingerprint.crash_type.clone(),
        first_seen_ms: 0,
        last_seen_ms: 0,
        count: 0,
        releases: Vec::new(),
        environments: Vec::new(),
        status: CrashGroupStatus::New,
        task_id: None,
        investigations: 0,
        reason: None,
    }
}

/// Counts a batch into the group and numbers its occurrences, attached to the current task.
pub fn count(group: &mut CrashGroup, batch: &[Occurrence]) -> Vec<RecordedOccurrence> {
    let mut recorded = Vec::with_capacity(batch.len());
    for occurrence in batch {
        let at = occurrence.received_at_ms;
        if group.count == 0 || at < group.first_seen_ms {
            group.first_seen_ms = at;
        }
        group.last_seen_ms = group.last_seen_ms.max(at);
        group.count += 1;
        add_distinct(&mut group.releases, occurrence.release.as_deref());
        add_distinct(&mut group.environments, occurrence.environment.as_deref());
        recorded.push(RecordedOccurrence {
            seq: group.count,
            received_at_ms: at,
            release: occurrence.release.clone(),
            environment: occurrence.environment.clone(),
            host: occurrence.host.clone(),
            message: occurrence.message.clone(),
            task_id: group.task_id.clone(),
        });
    }
    recorded
}

fn add_distinct(values: &mut Vec<String>, value: Option<&str>) {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return;
    };
    if let Err(at) = values.binary_search_by(|v| v.as_str().cmp(value))
        && values.len() < MAX_DISTINCT_VALUES
    {
        values.insert(at, value.to_string());
    }
}

/// What the group does after its latest occurrences are recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Nothing,
    /// Claim a slot and start an investigation (the first, or a re-opening).
    Investigate,
    /// The investigation's fix was accepted; wait for a recurrence.
    Fixed,
    /// The investigation ended without a fix.
    Unresolved(TaskStatus),
}

/// `task` is how the group's current investigation stands in the store; `latest_ms` when the
/// newest occurrence just recorded arrived (None when nothing new arrived).
pub fn next(group: &CrashGroup, task: Option<&LinkedTask>, latest_ms: Option<i64>) -> Next {
    match group.status {
        CrashGroupStatus::New | CrashGroupStatus::RateLimited => Next::Investigate,
        CrashGroupStatus::Unresolved | CrashGroupStatus::Failed => Next::Nothing,
        CrashGroupStatus::Investigating | CrashGroupStatus::Fixed => {
            let Some(task) = task.filter(|t| t.status.is_final()) else {
                return Next::Nothing;
            };
            if !fix_accepted(task.status) {
                return match group.status {
                    CrashGroupStatus::Investigating => Next::Unresolved(task.status),
                    _ => Next::Nothing,
                };
            }
            // A crash that arrives after the fix was accepted is a recurrence: re-open.
            match latest_ms {
                Some(at) if at > task.updated_at_ms => Next::Investigate,
                _ if group.status == CrashGroupStatus::Investigating => Next::Fixed,
                _ => Next::Nothing,
            }
        }
    }
}

/// `approved` counts: the investigate-crash playbook never merges by itself, the owners of the
/// code merge an approved branch.
fn fix_accepted(status: TaskStatus) -> bool {
    matches!(status, TaskStatus::Merged | TaskStatus::Approved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crash::{Fingerprint, Language};

    fn fingerprint() -> Fingerprint {
        Fingerprint {
            hash: "ab".repeat(32),
            title: "ValueError in handler".into(),
            language: Language::Python,
            crash_type: "ValueError".into(),
            frames: vec!["app.handler".into()],
        }
    }

    fn occurrence(at: i64, release: &str) -> Occurrence {
        Occurrence {
            received_at_ms: at,
            release: Some(release.into()),
            environment: Some("prod".into()),
            host: None,
            message: "bad".into(),
            excerpt: String::new(),
            batch: None,
        }
    }

    #[test]
    fn counts_first_and_last_seen_releases_and_numbers() {
        let mut group = empty_group("g", "svc", &fingerprint());
        let recorded = count(
            &mut group,
            &[occurrence(20, "1.1"), occurrence(10, "1.0"), occurrence(30, "1.1")],
        );
        assert_eq!(group.count, 3);
        assert_eq!((group.first_seen_ms, group.last_seen_ms), (10, 30));
        assert_eq!(group.releases, ["1.0", "1.1"]);
        assert_eq!(group.environments, ["prod"]);
        assert_eq!(recorded.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        let more = count(&mut group, &[occurrence(40, "1.2")]);
        assert_eq!(more[0].seq, 4);
    }

    #[test]
    fn distinct_values_are_bounded() {
        let mut group = empty_group("g", "svc", &fingerprint());
        let batch: Vec<_> = (0..200).map(|i| occurrence(i, &format!("r{i:03}"))).collect();
        count(&mut group, &batch);
        assert_eq!(group.releases.len(), MAX_DISTINCT_VALUES);
        assert_eq!(group.count, 200);
    }

    #[test]
    fn next_steps() {
        let mut group = empty_group("g", "svc", &fingerprint());
        let task = |status, at| LinkedTask {
            status,
            updated_at_ms: at,
        };
        assert_eq!(next(&group, None, Some(1)), Next::Investigate);
        group.status = CrashGroupStatus::RateLimited;
        assert_eq!(next(&group, None, None), Next::Investigate);
        group.status = CrashGroupStatus::Investigating;
        assert_eq!(next(&group, None, Some(1)), Next::Nothing);
        let running = task(TaskStatus::RunningAgent, 5);
        assert_eq!(next(&group, Some(&running), Some(9)), Next::Nothing);
        let approved = task(TaskStatus::Approved, 100);
        assert_eq!(next(&group, Some(&approved), Some(50)), Next::Fixed);
        assert_eq!(next(&group, Some(&approved), Some(150)), Next::Investigate);
        let closed = task(TaskStatus::Closed, 100);
        assert_eq!(
            next(&group, Some(&closed), Some(150)),
            Next::Unresolved(TaskStatus::Closed)
        );
        group.status = CrashGroupStatus::Fixed;
        let merged = task(TaskStatus::Merged, 100);
        assert_eq!(next(&group, Some(&merged), None), Next::Nothing);
        assert_eq!(next(&group, Some(&merged), Some(99)), Next::Nothing);
        assert_eq!(next(&group, Some(&merged), Some(101)), Next::Investigate);
        group.status = CrashGroupStatus::Unresolved;
        assert_eq!(next(&group, Some(&closed), Some(150)), Next::Nothing);
    }
}
