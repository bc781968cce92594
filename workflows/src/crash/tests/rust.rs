//! Rust panics and backtraces.

use super::{assert_different, assert_same, fp};
use crate::crash::Language;

const BASE: &str = "thread 'main' panicked at src/parser.rs:42:17:
called `Option::unwrap()` on a `None` value
stack backtrace:
   0: rust_begin_unwind
             at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/std/src/panicking.rs:665:5
   1: core::panicking::panic_fmt
             at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/core/src/panicking.rs:74:14
   2: core::panicking::panic
   3: core::option::unwrap_failed
   4: shop::parser::parse_header
             at ./src/parser.rs:42:17
   5: shop::parser::parse
             at ./src/parser.rs:12:5
   6: shop::main
             at ./src/main.rs:7:5
   7: core::ops::function::FnOnce::call_once
             at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/core/src/ops/function.rs:250:5
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.
";

#[test]
fn the_same_crash_elsewhere_fingerprints_the_same() {
    assert_same(
        BASE,
        &[
            (
                "old panic format, other thread, full backtrace with addresses and hashes, other rustc",
                "thread 'tokio-runtime-worker' panicked at 'called `Option::unwrap()` on a `None` value', src/parser.rs:44:9
stack backtrace:
   0:     0x55d0c3a1b2c3 - std::backtrace_rs::backtrace::libunwind::trace::h0c5e1f7d1a2b3c4d
   1:     0x55d0c3a1b2c4 - __rustc::rust_begin_unwind::h1111111111111111
   2:     0x55d0c3a1b2c5 - core::panicking::panic_fmt::h2222222222222222
   3:     0x55d0c3a1b2c6 - core::option::unwrap_failed::h3333333333333333
   4:     0x55d0c3a1b2c7 - shop::parser::parse_header::h4444444444444444
                               at /home/dana/work/shop/src/parser.rs:44:9
   5:     0x55d0c3a1b2c8 - shop::parser::parse::h5555555555555555
                               at /home/dana/work/shop/src/parser.rs:12:5
   6:     0x55d0c3a1b2c9 - shop::main::h6666666666666666
   7:     0x55d0c3a1b2ca - std::rt::lang_start::{{closure}}::h7777777777777777
",
            ),
            (
                "under AddressSanitizer, legacy mangling",
                "thread '<unnamed>' panicked at 'called `Option::unwrap()` on a `None` value', src/parser.rs:42:17
==77==ERROR: AddressSanitizer: ABRT on unknown address 0x00000000004d (pc 0x7f0 bp 0x7ff sp 0x7fe T0)
    #0 0x7f1 in raise /build/glibc-x/raise.c:51
    #1 0x7f2 in abort /build/glibc-x/abort.c:79
    #2 0x55a in std::process::abort::h8888888888888888 /rustc/abc/library/std/src/process.rs:2016:5
    #3 0x55b in core::option::unwrap_failed::h9999999999999999 /rustc/abc/library/core/src/option.rs:2015:5
    #4 0x55c in shop::parser::parse_header::h4444444444444444 /src/shop/src/parser.rs:42:17
    #5 0x55d in shop::parser::parse::h5555555555555555 /src/shop/src/parser.rs:12:5
    #6 0x55e in shop::main::h6666666666666666 /src/shop/src/main.rs:7:5
    #7 0x55f in main (/out/shop+0x1234)
",
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
                "an index out of bounds at the same place",
                &BASE.replace(
                    "called `Option::unwrap()` on a `None` value",
                    "index out of bounds: the len is 3 but the index is 5",
                ),
            ),
            (
                "another top frame",
                &BASE.replace("parse_header", "parse_body"),
            ),
        ],
    );
}

#[test]
fn panic_kinds_keep_their_fixed_text_only() {
    let f = fp(BASE);
    assert_eq!(f.language, Language::Rust);
    assert_eq!(f.crash_type, "called `Option::unwrap()` on a `None` value");
    assert_eq!(
        f.frames,
        [
            "shop::parser::parse_header",
            "shop::parser::parse",
            "shop::main"
        ]
    );
    assert_eq!(
        f.title,
        "called `Option::unwrap()` on a `None` value in parser::parse_header"
    );
    let oob = |n: &str| {
        BASE.replace(
            "called `Option::unwrap()` on a `None` value",
            &format!("index out of bounds: the len is {n} but the index is 9"),
        )
    };
    assert_eq!(fp(&oob("3")).hash, fp(&oob("8")).hash);
    assert_eq!(fp(&oob("3")).crash_type, "index out of bounds");
}

#[test]
fn without_a_backtrace_the_panic_location_stands_in() {
    let text = "thread 'main' panicked at crates/config/src/ports.rs:27:5:\nno free port in 8000..8100\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
    let f = fp(text);
    assert_eq!(f.crash_type, "panic");
    assert_eq!(f.frames, ["config/src/ports.rs"]);
    assert_eq!(
        fp(&text
            .replace(":27:5", ":31:9")
            .replace("8000..8100", "9000..9100"))
        .hash,
        f.hash
    );
}

#[test]
fn allocation_failure_is_out_of_memory() {
    let text = "memory allocation of 2314885530818453516 bytes failed\n==1==ERROR: AddressSanitizer: ABRT on unknown address 0x1\n    #0 0x1 in abort /build/glibc/abort.c:89\n    #1 0x2 in alloc::alloc::handle_alloc_error::h0123456789abcdef /rustc/x/src/liballoc/alloc.rs:307:14\n    #2 0x3 in img::decode::Buffer::grow::h1234567890abcdef img/src/decode.rs:80:9\n";
    let f = fp(text);
    assert_eq!(
        (f.language, f.crash_type.as_str()),
        (Language::Rust, "out of memory")
    );
    assert_eq!(f.frames, ["img::decode::Buffer::grow"]);
}
