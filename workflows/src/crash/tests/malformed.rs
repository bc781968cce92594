//! Malformed input never panics: it is an error (blank, too large) or a report of what could be
//! read (at worst the first line), fingerprinted deterministically.

use crate::crash::{CrashInputError, CrashReport, Language, MAX_TEXT_BYTES, fingerprint};

/// Fragments of every format, to cut up and splice.
const SAMPLES: [&str; 9] = [
    "Traceback (most recent call last):\n  File \"/a/b.py\", line 1, in f\n    x()\nValueError: bad\n\nThe above exception was the direct cause of the following exception:\n\nTraceback (most recent call last):\n  File \"/a/c.py\", line 2, in g\nKeyError: 'k'\n",
    "Exception in thread \"main\" java.lang.Error: x\n\tat a.B.c(B.java:1)\n\tSuppressed: java.lang.Error: y\n\t\tat a.B.d(B.java:2)\nCaused by: java.lang.Error: z\n\tat a.B.e(B.java:3)\n\t... 9 more\n",
    "panic: runtime error: index out of range [1] with length 0 [recovered]\n\tpanic: x\n\ngoroutine 1 [running]:\npanic({0x1, 0x2})\n\t/r/panic.go:1 +0x1\nmain.f(...)\n\t/m.go:2\ncreated by main.g\n",
    "thread 'main' panicked at 'msg\nmore', src/a.rs:1:2\nstack backtrace:\n   0: _$LT$a..B$u20$as$u20$c..D$GT$::e::h0123456789abcdef\n             at /rustc/x/a.rs:1:1\n",
    "TypeError: x\n    at f (/a.js:1:2)\n    at async Promise.all (index 0)\n    at new G (file:///b.mjs:3:4)\nf@http://h/c.js:5:6\n",
    "==1==ERROR: AddressSanitizer: SEGV on unknown address 0x0 (pc 0x1 bp 0x2 sp 0x3 T0)\n==1==The signal is caused by a READ memory access.\n    #0 0x1 in f(int (*)(void*)) (.isra.0) /a.cc:1:2\n    #1 0x2 (/lib/x.so+0x3)\n    #2 0x3 in libpthread.so.0\n",
    "a.cc:1:2: runtime error: load of null pointer of type 'int'\n#0  g (x=0) at a.c:1\n",
    "[    1.000000] BUG: unable to handle kernel NULL pointer dereference at 0000000000000008\n[    1.000001] RIP: 0010:f+0x1/0x2\n[    1.000002] Call Trace:\n[    1.000003]  ? g+0x1/0x2\n[    1.000004]  __x64_sys_read+0x1/0x2\n[    1.000005] ---[ end trace 1 ]---\n",
    "Kernel panic - not syncing: Fatal exception\n",
];

/// A deterministic stand-in for random bytes (no randomness in this crate, even in tests).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

fn check(bytes: &[u8]) {
    match CrashReport::from_bytes(bytes) {
        Ok(report) => {
            let a = fingerprint(&report);
            let b =
                fingerprint(&CrashReport::from_bytes(bytes).expect("parsed once, parses again"));
            assert_eq!(
                a,
                b,
                "not deterministic for {:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(a.hash.len(), 64);
        }
        Err(CrashInputError::Empty) => assert!(String::from_utf8_lossy(bytes).trim().is_empty()),
        Err(e) => panic!(
            "unexpected error {e} for {:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

#[test]
fn blank_text_is_an_error() {
    for blank in ["", " ", "\n\n\t  \r\n"] {
        assert_eq!(CrashReport::from_text(blank), Err(CrashInputError::Empty));
    }
}

#[test]
fn oversized_text_is_an_error() {
    let big = "x".repeat(MAX_TEXT_BYTES + 1);
    assert!(matches!(
        CrashReport::from_text(&big),
        Err(CrashInputError::TooLarge { .. })
    ));
}

#[test]
fn garbage_is_fingerprinted_by_its_first_line() {
    let report =
        CrashReport::from_bytes(b"\x00\xff\xfe garbage 0xdeadbeef at 12:34:56\n\x01\x02 more")
            .unwrap();
    assert_eq!(report.language, Language::Unknown);
    assert!(report.frames.is_empty());
    let f = fingerprint(&report);
    assert!(f.title.contains("garbage <hex> at <ts>"), "{f:?}");
    let other = CrashReport::from_bytes(b"\x00\xff\xfe garbage 0xcafe at 01:02:03\n").unwrap();
    assert_eq!(fingerprint(&other).hash, f.hash);
}

#[test]
fn every_prefix_and_splice_of_every_format_parses() {
    for sample in SAMPLES {
        let bytes = sample.as_bytes();
        for end in 0..=bytes.len() {
            check(&bytes[..end]);
            check(&bytes[end..]);
        }
    }
    for (i, a) in SAMPLES.iter().enumerate() {
        for b in &SAMPLES[i..] {
            check(format!("{a}{b}").as_bytes());
            check(format!("{b}\n{a}").as_bytes());
        }
    }
}

#[test]
fn random_bytes_and_odd_lines_parse() {
    for seed in 0..300 {
        check(&noise(seed, (seed as usize * 37) % 2048 + 1));
    }
    let odd = [
        "Traceback (most recent call last):",
        "goroutine 1 [running]:",
        "panic: ",
        "thread 'main' panicked at",
        "    at ",
        "    at ()",
        "    at f ((((",
        "Caused by:",
        "#0 0x",
        "#0 0x1 in )))(((",
        "Call Trace:",
        "==1==ERROR: AddressSanitizer:",
        "File \"\", line 1, in ",
        "\u{202e}ü(ß)::<>",
        "a\u{0}b\u{7f}c",
        "Exception in thread \"x\" a.B\n\tat (",
        "fatal error: \ngoroutine 1 [x]:\n)(",
        "\t... 99999999999999999999999 more",
    ];
    for text in odd {
        check(text.as_bytes());
        check(text.repeat(50).as_bytes());
    }
    check(")".repeat(100_000).as_bytes());
    check(
        format!(
            "panic: x\n\ngoroutine 1 [running]:\n{}\n",
            "f(".repeat(50_000)
        )
        .as_bytes(),
    );
}
