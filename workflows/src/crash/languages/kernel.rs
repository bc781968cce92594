//! Linux kernel oopses and panics (console logs, syzkaller-style): the first report line
//! (`BUG:`, `KASAN:`, `WARNING:`, `general protection fault`, `Kernel panic - not syncing:`),
//! then `Call Trace:` frames `func+0x1d3/0x2c6`. Stack exhaustion (`corrupted stack end`) is
//! identified by the task's entry frames, not by wherever the stack ran out.

use std::sync::LazyLock;

use regex::Regex;

use super::{Language, Parsed, RawFrame};
use crate::crash::report::{Frame, FrameKind, StackEnd};
use crate::crash::scrub::{self, re};

static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"^(?:Kernel panic - not syncing: (?P<panic>.+)",
        r"|kernel BUG at (?P<bug_at>[^:\s]+)",
        r"|BUG: (?P<bug>.+)",
        r"|(?P<san>KASAN|KMSAN|KCSAN|KFENCE|UBSAN): (?P<san_msg>.+)",
        r"|(?P<fault>general protection fault|divide error|invalid opcode|stack segment|double fault)\b.*",
        r"|WARNING: (?P<warning>.+)",
        r"|Unable to handle kernel (?P<unable>.+?)(?: at virtual address .*)?",
        r"|Internal error: (?P<internal>[^:]+).*",
        r"|INFO: (?P<info>.+)",
        r")$",
    ))
});
static TRACE_MARKER: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:Call Trace|Call trace|Backtrace):?$"));
static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"^(?:\[<[0-9a-f]+>\]\s+)?(?:(?P<unreliable>\? )?(?P<f>[A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+/0x[0-9a-f]+",
        r"(?:\s+\[[^\]]+\])?(?:\s+\S+:\d+)?(?:\s+\[inline\])?",
        r"|(?P<inline>[A-Za-z_.$][\w.$]*) \S+:\d+ \[inline\])$",
    ))
});
static RIP: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:RIP: [0-9a-f]{4}:|pc : )(?P<f>[A-Za-z_.$][\w.$]*)\+0x"));
static CODE_LOCATION: LazyLock<Regex> = LazyLock::new(|| re(r"\S+\+0x[0-9a-f]+/0x[0-9a-f]+"));
static CLONE_SUFFIX: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:\.(?:isra|constprop|part|cold|llvm|lto_priv)(?:\.\d+)?)+$"));
/// Per-architecture syscall wrappers (`__x64_sys_socket`, `__arm64_sys_socket`, `__se_sys_...`).
static SYSCALL: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:__(?:x64|ia32|arm64|riscv|s390x)_|__se_|__do_|__)sys_"));

const END_MARKERS: [&str; 6] = [
    "---[ end trace",
    "Kernel Offset:",
    "Dumping ftrace",
    "Rebooting in",
    "---[ end Kernel panic",
    "Modules linked in:",
];
/// The functions that report a crash.
const NOISE: [&str; 31] = [
    "dump_stack",
    "dump_stack_lvl",
    "__dump_stack",
    "show_stack",
    "dump_backtrace",
    "show_trace_log_lvl",
    "panic",
    "nmi_panic",
    "__warn",
    "warn_slowpath_fmt",
    "warn_slowpath_null",
    "report_bug",
    "fixup_bug",
    "handle_bug",
    "do_error_trap",
    "do_trap",
    "do_invalid_op",
    "exc_invalid_op",
    "invalid_op",
    "die",
    "oops_end",
    "__die",
    "print_address_description",
    "print_report",
    "end_report",
    "kasan_report",
    "__kasan_report",
    "check_memory_region",
    "printk",
    "vprintk",
    "vprintk_emit",
];
const NOISE_PREFIXES: [&str; 8] = [
    "kasan_",
    "__asan_",
    "__tsan_",
    "__msan_",
    "kmsan_",
    "__sanitizer_cov_",
    "ubsan_",
    "__ubsan_",
];
/// Entry, scheduling and work-dispatch frames that many unrelated crashes share.
const GENERIC: [&str; 34] = [
    "ret_from_fork",
    "ret_from_fork_asm",
    "kthread",
    "worker_thread",
    "process_one_work",
    "process_scheduled_works",
    "do_syscall_64",
    "do_fast_syscall_32",
    "__do_fast_syscall_32",
    "do_syscall_x64",
    "x64_sys_call",
    "el0_svc",
    "el0_svc_handler",
    "el0_svc_common",
    "el0_sync",
    "el0_sync_handler",
    "invoke_syscall",
    "do_el0_svc",
    "__schedule",
    "schedule",
    "preempt_schedule",
    "preempt_schedule_common",
    "preempt_schedule_irq",
    "___preempt_schedule",
    "retint_kernel",
    "irq_exit",
    "__do_softirq",
    "do_softirq",
    "run_ksoftirqd",
    "smpboot_thread_fn",
    "start_kernel",
    "cpu_startup_entry",
    "do_idle",
    "secondary_startup_64",
];
const GENERIC_PREFIXES: [&str; 4] = ["entry_", "asm_", "el0t_", "syscall_"];

fn header(line: &str) -> Option<String> {
    let caps = HEADER.captures(line)?;
    let group = |name: &str| caps.name(name).map(|m| m.as_str());
    Some(if let Some(m) = group("panic") {
        format!("kernel panic: {}", words(m))
    } else if let Some(file) = group("bug_at") {
        format!("kernel BUG at {file}")
    } else if let Some(m) = group("bug") {
        format!("BUG: {}", words(m))
    } else if let (Some(san), Some(m)) = (group("san"), group("san_msg")) {
        format!("{san}: {}", words(m))
    } else if let Some(fault) = group("fault") {
        fault.to_string()
    } else if let Some(m) = group("warning") {
        // "WARNING: CPU: 0 PID: 1 at net/core/dev.c:12 f+0x../0x.." says where in its frames.
        if m.starts_with("CPU:") || m.starts_with("at ") {
            "WARNING".into()
        } else {
            format!("WARNING: {}", words(m))
        }
    } else if let Some(m) = group("unable") {
        format!("Unable to handle kernel {}", words(m))
    } else if let Some(m) = group("internal") {
        format!("Internal error: {}", words(m))
    } else {
        format!("INFO: {}", words(group("info").unwrap_or("")))
    })
}

/// A report line's words: up to ` in `/` at ` (the function or address follows), without
/// code locations and numbers.
fn words(message: &str) -> String {
    let end = [" in ", " at "]
        .iter()
        .filter_map(|s| message.find(s))
        .min()
        .unwrap_or(message.len());
    let m = CODE_LOCATION.replace_all(&message[..end], "");
    scrub::bounded(&scrub::strip_numbers(&m), 120)
}

pub(super) fn parse(lines: &[&str]) -> Option<Parsed> {
    let (start, crash_type) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| header(l.trim()).map(|h| (i, h)))?;
    let rest = &lines[start + 1..];
    let has_trace = rest
        .iter()
        .any(|l| TRACE_MARKER.is_match(l.trim()) || RIP.is_match(l.trim()));
    if !has_trace && !crash_type.starts_with("kernel panic") {
        return None;
    }
    let mut parsed = Parsed::new(Language::Kernel);
    for line in rest {
        let t = line.trim();
        if END_MARKERS.iter().any(|m| t.starts_with(m)) && !parsed.frames.is_empty() {
            break;
        }
        if header(t).is_some() && !parsed.frames.is_empty() {
            break;
        }
        if let Some(caps) = RIP.captures(t) {
            parsed.frames.push(RawFrame::new(&caps["f"], None));
        } else if let Some(caps) = FRAME.captures(t)
            && caps.name("unreliable").is_none()
            && let Some(f) = caps.name("f").or(caps.name("inline"))
        {
            parsed.frames.push(RawFrame::new(f.as_str(), None));
        }
    }
    if crash_type.contains("corrupted stack end")
        || crash_type.contains("stack guard page")
        || crash_type.contains("stack overflow")
    {
        parsed.significant_end = StackEnd::Entry;
    }
    parsed.message = scrub::message(lines[start].trim());
    parsed.crash_type = crash_type;
    Some(parsed)
}

/// For structured inputs: the type given, or a report line's.
pub(super) fn crash_type(ty: &str, value: &str) -> String {
    if !ty.trim().is_empty() {
        return scrub::bounded(ty.trim(), 200);
    }
    value
        .lines()
        .find_map(|l| header(l.trim()))
        .unwrap_or_default()
}

/// A kernel function without compiler clone suffixes; syscall wrappers become `sys_<name>`.
pub(super) fn frame(raw: &RawFrame) -> Option<Frame> {
    let f = CLONE_SUFFIX.replace(raw.function.trim(), "");
    let function = SYSCALL.replace(&f, "sys_").into_owned();
    if function.is_empty() {
        return None;
    }
    let kind = if NOISE.contains(&function.as_str())
        || NOISE_PREFIXES.iter().any(|p| function.starts_with(p))
    {
        FrameKind::Noise
    } else if GENERIC.contains(&function.as_str())
        || GENERIC_PREFIXES.iter().any(|p| function.starts_with(p))
    {
        FrameKind::Library
    } else {
        FrameKind::App
    };
    Some(Frame {
        function,
        file: raw.file.as_deref().and_then(scrub::display_path),
        kind,
    })
}
