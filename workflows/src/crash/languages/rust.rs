//! Rust panics (`thread 'x' panicked at ...`, old and new formats) and allocation failures,
//! with frames from `stack backtrace:` or, under a sanitizer or libFuzzer, from its report.
//! Symbols lose their hash (`::h0123456789abcdef`) and legacy mangling escapes (`$LT$`).

use std::sync::LazyLock;

use regex::Regex;

use super::{Language, Parsed, RawFrame, native};
use crate::crash::report::{Frame, FrameKind};
use crate::crash::scrub::{self, re};

static PANIC_OLD: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?s)thread '[^'\n]*' panicked at '(?P<msg>.*?)', (?P<loc>[^\s']+?):\d+(?::\d+)?")
});
static PANIC_NEW: LazyLock<Regex> = LazyLock::new(|| {
    re(r"thread '[^'\n]*' panicked at (?P<loc>[^\s']+?):\d+:\d+:\n(?P<msg>[^\n]*)")
});
static OOM: LazyLock<Regex> = LazyLock::new(|| re(r"memory allocation of \d+ bytes failed"));
static OVERFLOW: LazyLock<Regex> =
    LazyLock::new(|| re(r"thread '[^'\n]*' has overflowed its stack"));
static BT_FRAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*\d+:\s+(?:0x[0-9a-fA-F]+ - )?(?P<func>\S.*?)\s*$"));
static BT_AT: LazyLock<Regex> = LazyLock::new(|| re(r"^\s+at (?P<file>.+?)(?::\d+){0,2}\s*$"));
static HASH: LazyLock<Regex> =
    LazyLock::new(|| re(r"::h[0-9a-f]{16}\b|\s*\(\.llvm\.\d+\)|\.llvm\.\d+"));
static OVERFLOW_OP: LazyLock<Regex> =
    LazyLock::new(|| re(r"^attempt to \w+(?: \w+)? with overflow"));

const ESCAPES: [(&str, &str); 16] = [
    ("$LT$", "<"),
    ("$GT$", ">"),
    ("$u20$", " "),
    ("$C$", ","),
    ("$RF$", "&"),
    ("$BP$", "*"),
    ("$u7b$", "{"),
    ("$u7d$", "}"),
    ("$u27$", "'"),
    ("$u5b$", "["),
    ("$u5d$", "]"),
    ("$u7e$", "~"),
    ("$SP$", "@"),
    ("$u3b$", ";"),
    ("$u2b$", "+"),
    ("$u22$", "\""),
];
/// Panic, unwinding, abort and fuzzing machinery.
const NOISE_FUNCTIONS: [&str; 14] = [
    "rust_begin_unwind",
    "rust_panic",
    "rust_oom",
    "rust_fuzzer_test_input",
    "__rdl_oom",
    "__rg_oom",
    "main",
    "_start",
    "__libc_start_main",
    "__libc_start_call_main",
    "LLVMFuzzerTestOneInput",
    "rust_eh_personality",
    "__scrt_common_main_seh",
    "BaseThreadInitThunk",
];
const NOISE_CRATES: [&str; 4] = ["libfuzzer_sys", "backtrace", "panic_unwind", "panic_abort"];
const NOISE_PATHS: [&str; 19] = [
    "std::panicking::",
    "core::panicking::",
    "std::panic::",
    "std::sys::unix::abort_internal",
    "std::sys::pal::unix::abort_internal",
    "std::sys::abort_internal",
    "std::process::abort",
    "std::sys_common::backtrace::",
    "std::sys::backtrace::",
    "std::rt::",
    "core::result::unwrap_failed",
    "core::option::unwrap_failed",
    "core::option::expect_failed",
    "core::option::expect_none_failed",
    "alloc::alloc::handle_alloc_error",
    "std::alloc::rust_oom",
    "std::alloc::default_alloc_error_hook",
    "alloc::raw_vec::capacity_overflow",
    "core::slice::index::slice_",
];
const LIBRARY_CRATES: [&str; 5] = ["std", "core", "alloc", "test", "proc_macro"];
const LIBRARY_PATHS: [&str; 4] = [
    "/rustc/",
    "/.cargo/registry/",
    "/rust/registry/",
    "/cargo/registry/",
];

pub(super) fn parse(lines: &[&str]) -> Option<Parsed> {
    let text = lines.join("\n");
    let panic = PANIC_NEW
        .captures(&text)
        .or_else(|| PANIC_OLD.captures(&text));
    let mut parsed = Parsed::new(Language::Rust);
    let mut location = None;
    if let Some(caps) = &panic {
        parsed.crash_type = classify(&caps["msg"]);
        parsed.message = scrub::message(&caps["msg"]);
        location = Some(caps["loc"].to_string());
    } else if let Some(m) = OOM.find(&text) {
        parsed.crash_type = "out of memory".into();
        parsed.message = scrub::message(m.as_str());
    } else if OVERFLOW.is_match(&text) {
        parsed.crash_type = "stack overflow".into();
    } else {
        return None;
    }
    parsed.frames = backtrace(lines).unwrap_or_else(|| native::first_stack(lines));
    if parsed.frames.is_empty()
        && let Some(location) = location
    {
        // No backtrace at all: the panic's location is the best stand-in for a frame.
        parsed.frames.push(RawFrame::new("", Some(&location)));
    }
    Some(parsed)
}

/// The frames of `stack backtrace:` (RUST_BACKTRACE=1), if printed.
fn backtrace(lines: &[&str]) -> Option<Vec<RawFrame>> {
    let start = lines.iter().position(|l| l.trim() == "stack backtrace:")?;
    let mut frames: Vec<RawFrame> = Vec::new();
    for line in &lines[start + 1..] {
        if let Some(caps) = BT_FRAME.captures(line) {
            frames.push(RawFrame::new(&caps["func"], None));
        } else if let Some(caps) = BT_AT.captures(line) {
            if let Some(last) = frames.last_mut() {
                last.file = Some(caps["file"].to_string());
            }
        } else {
            break;
        }
    }
    Some(frames)
}

/// The kind of a panic, from its message: the standard ones keep their fixed text (without
/// the values they print); any other message is data, so just `panic`.
fn classify(message: &str) -> String {
    let m = message.trim();
    const FIXED: [&str; 12] = [
        "called `Result::unwrap()` on an `Err` value",
        "called `Option::unwrap()` on a `None` value",
        "index out of bounds",
        "assertion failed",
        "explicit panic",
        "not implemented",
        "not yet implemented",
        "internal error: entered unreachable code",
        "capacity overflow",
        "already borrowed",
        "already mutably borrowed",
        "attempt to divide by zero",
    ];
    if let Some(fixed) = FIXED.iter().find(|f| m.starts_with(*f)) {
        return fixed.to_string();
    }
    if m.starts_with("assertion `left") {
        return "assertion failed".into();
    }
    if let Some(op) = OVERFLOW_OP.find(m) {
        return op.as_str().to_string();
    }
    "panic".into()
}

/// For structured inputs (Sentry's Rust SDK reports panics as type `panic`).
pub(super) fn crash_type(ty: &str, value: &str) -> String {
    let ty = ty.trim();
    if ty.is_empty() || ty == "panic" || ty == "Panic" {
        classify(value)
    } else {
        scrub::bounded(ty, 200)
    }
}

/// Whether a symbol is Rust's: a path with a hash, legacy escapes, or Rust's runtime symbols.
pub(crate) fn looks_rust(function: &str) -> bool {
    HASH.is_match(function)
        || function.contains("$LT$")
        || function.contains("{{closure}}")
        || function.starts_with("__rust")
        || function.starts_with("rust_")
}

/// `crate::module::function` (or `<T as Trait>::method`), demangled and without its hash;
/// C symbols in a Rust process go to the native rules.
pub(super) fn frame(raw: &RawFrame) -> Option<Frame> {
    let file = raw.file.as_deref();
    let function = tidy(&raw.function);
    if function.is_empty() {
        // The panic's location standing in for a backtrace.
        let shown = file.and_then(scrub::display_path)?;
        return Some(Frame {
            function: shown.clone(),
            file: Some(shown),
            kind: FrameKind::App,
        });
    }
    let noise = NOISE_FUNCTIONS.contains(&function.as_str()) || function.starts_with("__rust");
    // C and C++ frames of the same process (libc, libFuzzer's `fuzzer::Fuzzer::RunOne(...)`):
    // Rust symbols have no argument list and come from `.rs` files.
    let native_file = file
        .and_then(Language::from_path)
        .is_some_and(|l| l == Language::Native);
    if !noise
        && !looks_rust(&raw.function)
        && (!function.contains("::") || function.ends_with(')') || native_file)
    {
        return native::frame_from(&function, file);
    }
    let krate = function
        .trim_start_matches(['<', '&', '*'])
        .trim_start_matches("dyn ")
        .split("::")
        .next()
        .unwrap_or("");
    let kind = if noise
        || NOISE_CRATES.contains(&krate)
        || NOISE_PATHS.iter().any(|p| function.starts_with(p))
    {
        FrameKind::Noise
    } else if LIBRARY_CRATES.contains(&krate)
        || file.is_some_and(|f| LIBRARY_PATHS.iter().any(|p| f.contains(p)))
    {
        FrameKind::Library
    } else {
        FrameKind::App
    };
    Some(Frame {
        function,
        file: file.and_then(scrub::display_path),
        kind,
    })
}

fn tidy(function: &str) -> String {
    let mut f = function.trim().to_string();
    if f.contains('$') {
        if let Some(rest) = f.strip_prefix("_$") {
            f = format!("${rest}");
        }
        for (from, to) in ESCAPES {
            f = f.replace(from, to);
        }
        f = f.replace("..", "::");
    }
    HASH.replace_all(&f, "").trim().to_string()
}
