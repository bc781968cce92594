//! C and C++ crashes: sanitizer reports (`==N==ERROR: AddressSanitizer: heap-buffer-overflow`,
//! UBSan's `file:line:col: runtime error: ...`, MSan, TSan, LSan, libFuzzer's deadly signal) and
//! gdb-style backtraces. The crash type drops the tool's name, so ASan and UBSan reports of one
//! signal agree; frames lose addresses, argument lists and compiler clone suffixes.

use std::sync::LazyLock;

use regex::Regex;

use super::{Language, Parsed, RawFrame, rust, strip_trailing_args};
use crate::crash::report::{Frame, FrameKind};
use crate::crash::scrub::{self, re};

static SAN_ERROR: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:ERROR|WARNING): (?P<tool>\w*Sanitizer|libFuzzer):\s*(?P<rest>.*)$"));
static UBSAN: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\S+:\d+(?::\d+)?: runtime error: (?P<rest>.*)$"));
static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*#(?P<n>\d+)\s+(?:0x[0-9a-fA-F]+(?:\s+in)?\s+(?P<rest>.+?)|(?P<gdb>[^\s(#][^(]*\(.*\)\s+at\s+.+?))\s*$",
    )
});
static ACCESS: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?P<rw>READ|WRITE) (?:of size|memory access)"));
static SOURCE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^[\w.+-]+\.(?:c|cc|cpp|cxx|c\+\+|h|hh|hpp|hxx|inc|rs|go|s|S|m|mm|swift|zig)(?::\d+){0,2}$")
});
static MODULE: LazyLock<Regex> = LazyLock::new(|| re(r"\.so(?:\.\d+)*$|\.dylib$|\.dll$|\.exe$"));
static CLONE_SUFFIX: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:\.(?:cold|isra|constprop|part|llvm|lto_priv)(?:\.\d+)?)+$"));
/// How symbolizers print a compiler clone of a function: `f(int) (.isra.0)`.
static CLONE_GROUP: LazyLock<Regex> =
    LazyLock::new(|| re(r"\s*\(\.(?:cold|isra|constprop|part|llvm|lto_priv)[^)]*\)\s*$"));
static QUOTED: LazyLock<Regex> = LazyLock::new(|| re(r"'[^']*'"));

/// Reporting, signal, process start and fuzzing machinery.
const NOISE_PREFIXES: [&str; 11] = [
    "__asan",
    "__sanitizer",
    "__interceptor",
    "__msan",
    "__ubsan",
    "__tsan",
    "__lsan",
    "__hwasan",
    "__dfsan",
    "fuzzer::",
    "LLVMFuzzer",
];
const NOISE_FUNCTIONS: [&str; 26] = [
    "raise",
    "gsignal",
    "abort",
    "__GI_raise",
    "__GI_abort",
    "__libc_start_main",
    "__libc_start_call_main",
    "_start",
    "main",
    "__assert_fail",
    "__assert_fail_base",
    "__assert_perror_fail",
    "__cxa_throw",
    "__cxa_rethrow",
    "std::terminate",
    "__clone",
    "clone",
    "clone3",
    "start_thread",
    "pthread_kill",
    "__pthread_kill",
    "__pthread_kill_implementation",
    "__pthread_kill_internal",
    "__restore_rt",
    "_Unwind_RaiseException",
    "__gxx_personality_v0",
];
const LIBC_FUNCTIONS: [&str; 20] = [
    "malloc",
    "calloc",
    "realloc",
    "free",
    "memcpy",
    "memmove",
    "memset",
    "memcmp",
    "strlen",
    "strcpy",
    "strncpy",
    "strcmp",
    "strncmp",
    "strdup",
    "strchr",
    "printf",
    "fprintf",
    "sprintf",
    "snprintf",
    "vsnprintf",
];
const LIBRARY_PATHS: [&str; 9] = [
    "/usr/include/",
    "/usr/lib/",
    "/glibc-",
    "/libc++/",
    "/libcxx/",
    "libstdc++",
    "sysdeps/",
    "/rustc/",
    "compiler-rt/",
];

pub(super) fn parse(lines: &[&str]) -> Option<Parsed> {
    let error = lines
        .iter()
        .position(|l| SAN_ERROR.is_match(l) || UBSAN.is_match(l.trim()));
    let mut parsed = Parsed::new(Language::Native);
    match error {
        Some(i) => {
            let line = lines[i].trim();
            let (ubsan, caps) = match SAN_ERROR.captures(line) {
                Some(caps) => (false, caps),
                None => (true, UBSAN.captures(line)?),
            };
            let rest = &caps["rest"];
            let access = lines
                .iter()
                .skip(i + 1)
                .take(3)
                .find_map(|l| ACCESS.captures(l))
                .map(|c| c["rw"].to_string());
            parsed.crash_type = sanitizer_type(rest, ubsan, access.as_deref());
            parsed.message = scrub::message(rest);
            parsed.frames = first_stack(&lines[i..]);
        }
        None => {
            parsed.frames = first_stack(lines);
            if parsed.frames.len() < 2 {
                return None;
            }
            parsed.crash_type = "crash".into();
        }
    }
    if parsed.frames.iter().any(|f| rust::looks_rust(&f.function)) {
        parsed.language = Language::Rust;
    }
    Some(parsed)
}

/// `heap-buffer-overflow READ`, `SEGV`, `FPE`, `runtime error: signed integer overflow`: the
/// error without the tool, addresses, sizes, quoted types or thread.
fn sanitizer_type(rest: &str, ubsan: bool, access: Option<&str>) -> String {
    let cut = |s: &str, seps: &[&str]| {
        let end = seps
            .iter()
            .filter_map(|sep| s.find(sep))
            .min()
            .unwrap_or(s.len());
        s[..end].to_string()
    };
    let kind = if ubsan {
        format!("runtime error: {}", cut(rest, &[":"]))
    } else {
        cut(rest, &[" on ", " at ", " (", ": ", " in "])
    };
    let kind = scrub::strip_numbers(&QUOTED.replace_all(&kind, ""));
    let kind = scrub::bounded(&kind, 120);
    match access {
        Some(rw) if !ubsan => format!("{kind} {rw}"),
        _ => kind,
    }
}

/// For structured inputs: the type given, or a sanitizer line's error.
pub(super) fn crash_type(ty: &str, value: &str) -> String {
    if !ty.trim().is_empty() {
        return scrub::bounded(ty.trim(), 200);
    }
    match SAN_ERROR.captures(value) {
        Some(caps) => sanitizer_type(&caps["rest"], false, None),
        None => super::typed("", value),
    }
}

/// The first numbered stack (`#0 0x... in f file:line`) in `lines`: it ends at the first line
/// that is not a frame, or where numbering restarts at `#0`.
pub(crate) fn first_stack(lines: &[&str]) -> Vec<RawFrame> {
    let mut frames = Vec::new();
    for line in lines {
        match FRAME.captures(line) {
            Some(caps) => {
                if !frames.is_empty() && &caps["n"] == "0" {
                    break;
                }
                let rest = caps
                    .name("rest")
                    .or(caps.name("gdb"))
                    .map_or("", |m| m.as_str());
                let (function, file) = split_location(rest);
                frames.push(RawFrame::new(&function, file.as_deref()));
            }
            None if !frames.is_empty() => break,
            None => {}
        }
    }
    frames
}

/// `(function, file)` from a frame's text after its address: ASan's `f(args) path:l:c` or
/// `f (module+0x1f)`, gdb's `f (args) at path:l` or `f () from /lib/x.so`.
fn split_location(rest: &str) -> (String, Option<String>) {
    let s = rest.trim();
    if let Some((f, loc)) = s.rsplit_once(" at ")
        && looks_like_path(loc.trim())
    {
        return (f.trim().to_string(), Some(strip_line(loc.trim())));
    }
    if let Some((f, _)) = s.rsplit_once(" from ") {
        return (f.trim().to_string(), None);
    }
    if s.ends_with(')') && s.contains("+0x") {
        let f = strip_trailing_args(s);
        return (if f == s { String::new() } else { f.to_string() }, None);
    }
    if let Some((f, loc)) = s.rsplit_once(' ')
        && looks_like_path(loc)
    {
        return (f.trim().to_string(), Some(strip_line(loc)));
    }
    (s.to_string(), None)
}

fn looks_like_path(token: &str) -> bool {
    token.contains('/') || token.contains('\\') || SOURCE.is_match(token)
}

fn strip_line(location: &str) -> String {
    let mut loc = location;
    while let Some((head, tail)) = loc.rsplit_once(':') {
        if tail.is_empty() || !tail.chars().all(|c| c.is_ascii_digit()) {
            break;
        }
        loc = head;
    }
    loc.to_string()
}

/// A C or C++ frame, or a Rust one found in a sanitizer report.
pub(super) fn frame(raw: &RawFrame) -> Option<Frame> {
    if rust::looks_rust(&raw.function) {
        return rust::frame(raw);
    }
    frame_from(&raw.function, raw.file.as_deref())
}

/// `ns::Class::Method` without thunks, qualifiers, arguments and clone suffixes; unsymbolized
/// frames (only a module) are dropped.
pub(crate) fn frame_from(function: &str, file: Option<&str>) -> Option<Frame> {
    let unclone = CLONE_GROUP.replace(function.trim(), "");
    let mut f = unclone.as_ref();
    for thunk in [
        "non-virtual thunk to ",
        "virtual thunk to ",
        "covariant return thunk to ",
    ] {
        f = f.strip_prefix(thunk).unwrap_or(f);
    }
    while !f.ends_with(')') {
        match [" const", " volatile", " noexcept", "&&", "&"]
            .iter()
            .find_map(|q| f.strip_suffix(q))
        {
            Some(shorter) => f = shorter.trim_end(),
            None => break,
        }
    }
    let f = strip_trailing_args(f).replace("[abi:cxx11]", "");
    let function = CLONE_SUFFIX.replace(&f, "").trim().to_string();
    if function.is_empty() || MODULE.is_match(&function) {
        return None;
    }
    let file = file.filter(|f| !f.trim().is_empty());
    Some(Frame {
        kind: kind_of(&function, file),
        file: file.and_then(scrub::display_path),
        function,
    })
}

fn kind_of(function: &str, file: Option<&str>) -> FrameKind {
    if NOISE_PREFIXES.iter().any(|p| function.starts_with(p))
        || NOISE_FUNCTIONS.contains(&function)
        || file
            .is_some_and(|f| f.contains("/sanitizer_common/") || f.contains("compiler-rt/lib/asan"))
    {
        FrameKind::Noise
    } else if file.is_none()
        || function.starts_with("std::")
        || function.starts_with("__gnu_cxx::")
        || function.starts_with("__cxxabiv1::")
        || function.starts_with("operator new")
        || function.starts_with("operator delete")
        || LIBC_FUNCTIONS.contains(&function)
        || file.is_some_and(|f| LIBRARY_PATHS.iter().any(|p| f.contains(p)))
    {
        // Without a source file, a frame is a system library's (no debug info).
        FrameKind::Library
    } else {
        FrameKind::App
    }
}
