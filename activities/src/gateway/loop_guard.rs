//! The loop guard: an agent that sends the very same request again and again is stuck (and
//! each repeat costs as much as the first), so the `limit`-th identical request in a row of a
//! run is refused, and so is every further repeat. Any different request starts a new streak.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::cost_guard::Refusal;

/// The budget name a loop-guard refusal carries.
pub const BUDGET: &str = "loop_guard";

/// The identical requests in a row of one run.
#[derive(Debug, Default)]
pub struct Streak {
    last: Option<u64>,
    count: u32,
}

impl Streak {
    /// Counts `body` and returns how many identical requests in a row it makes (1 for a
    /// request unlike the last one).
    pub fn observe(&mut self, body: &[u8]) -> u32 {
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        let hash = hasher.finish();
        if self.last == Some(hash) {
            self.count = self.count.saturating_add(1);
        } else {
            self.last = Some(hash);
            self.count = 1;
        }
        self.count
    }
}

/// The refusal for a request that makes `count` identical requests in a row, if `limit`
/// (0: no guard) says it is one too many.
pub fn check(limit: u32, count: u32) -> Option<Refusal> {
    (limit > 0 && count >= limit).then(|| Refusal {
        budget: BUDGET.into(),
        message: format!(
            "loop_guard: the same request was sent {count} times in a row (the limit is \
             {limit}); change the request instead of repeating it"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_th_repeat_is_refused_until_the_request_changes() {
        let mut streak = Streak::default();
        let counts: Vec<u32> = [&b"a"[..], b"a", b"a", b"a", b"b", b"a"]
            .iter()
            .map(|body| streak.observe(body))
            .collect();
        assert_eq!(counts, [1, 2, 3, 4, 1, 1]);
        let refused: Vec<bool> = counts.iter().map(|&n| check(3, n).is_some()).collect();
        assert_eq!(refused, [false, false, true, true, false, false]);
        assert!(check(0, 100).is_none(), "0 turns the guard off");
        assert_eq!(check(3, 3).expect("refused").budget, "loop_guard");
    }
}
