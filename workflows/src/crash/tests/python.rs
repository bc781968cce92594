//! Python tracebacks.

use super::{assert_different, assert_same, fp, sha256_hex};
use crate::crash::Language;

const BASE: &str = r#"Traceback (most recent call last):
  File "/home/alice/src/shop/app/main.py", line 40, in <module>
    run()
  File "/home/alice/src/shop/app/orders.py", line 12, in run
    total = compute(items)
  File "/home/alice/src/shop/app/pricing.py", line 88, in compute
    return mean(prices)
  File "/usr/lib/python3.11/statistics.py", line 430, in mean
    raise StatisticsError('mean requires at least one data point')
statistics.StatisticsError: mean requires at least one data point
"#;

#[test]
fn the_same_crash_elsewhere_fingerprints_the_same() {
    assert_same(
        BASE,
        &[
            (
                "other machine, Python version and line numbers",
                r#"Traceback (most recent call last):
  File "/srv/deploy/releases/2024-05-01T10-00/app/main.py", line 41, in <module>
    run()
  File "/srv/deploy/releases/2024-05-01T10-00/app/orders.py", line 15, in run
    total = compute(items)
  File "/srv/deploy/releases/2024-05-01T10-00/app/pricing.py", line 90, in compute
    return mean(prices)
    ^^^^^^^^^^^^
  File "/usr/local/lib/python3.12/statistics.py", line 484, in mean
    raise StatisticsError('mean requires at least one data point')
statistics.StatisticsError: mean requires at least one data point
"#,
            ),
            (
                "timestamped log lines and output around it",
                "2024-05-01T10:00:00.123Z starting worker 7\n\
                 2024-05-01T10:00:01.456Z Traceback (most recent call last):\n\
                 2024-05-01T10:00:01.456Z   File \"C:\\Users\\bob\\shop\\app\\main.py\", line 40, in <module>\n\
                 2024-05-01T10:00:01.456Z   File \"C:\\Users\\bob\\shop\\app\\orders.py\", line 12, in run\n\
                 2024-05-01T10:00:01.456Z   File \"C:\\Users\\bob\\shop\\app\\pricing.py\", line 88, in compute\n\
                 2024-05-01T10:00:01.456Z   File \"C:\\Python311\\Lib\\statistics.py\", line 430, in mean\n\
                 2024-05-01T10:00:01.457Z statistics.StatisticsError: mean requires at least one data point\n\
                 2024-05-01T10:00:01.458Z worker 7 exited\n",
            ),
        ],
    );
}

#[test]
fn other_code_paths_fingerprint_differently() {
    assert_different(
        BASE,
        &[
            (
                "another exception type",
                &BASE.replace("statistics.StatisticsError:", "ValueError:"),
            ),
            (
                "another top in-app frame",
                &BASE.replace("in compute", "in compute_discount"),
            ),
            (
                "another module",
                &BASE.replace("app/pricing.py", "app/discounts.py"),
            ),
        ],
    );
}

#[test]
fn the_root_cause_of_a_chain_counts() {
    let chained = r#"Traceback (most recent call last):
  File "/app/store.py", line 10, in lookup
    return cache[key]
KeyError: 'user-123'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/main.py", line 5, in <module>
    lookup("user-123")
  File "/app/store.py", line 12, in lookup
    raise LookupFailed(key) from err
store.LookupFailed: user-123
"#;
    let f = fp(chained);
    assert_eq!(f.language, Language::Python);
    assert_eq!(f.crash_type, "KeyError");
    assert_eq!(f.frames, ["store.lookup"]);
    assert_eq!(f.title, "KeyError in store.lookup");
    // Another key, same crash.
    assert_eq!(fp(&chained.replace("user-123", "user-999")).hash, f.hash);
}

#[test]
fn an_earlier_logged_traceback_is_not_the_crash() {
    let logged = "Traceback (most recent call last):\n  File \"/app/retry.py\", line 3, in attempt\nTimeoutError: timed out\nretrying...\n";
    let f = fp(&format!("{logged}{BASE}"));
    assert_eq!(f.hash, fp(BASE).hash);
}

#[test]
fn the_canonical_string_is_pinned() {
    // Hashes name CrashInvestigation workflows: a change here regroups every crash.
    let f = fp(BASE);
    let canonical = "errand-crash-v1\ntype=statistics.StatisticsError\nframe=pricing.compute\nframe=orders.run\nframe=main.<module>\n";
    assert_eq!(f.hash, sha256_hex(canonical));
    assert_eq!(f.title, "StatisticsError in pricing.compute");
}
