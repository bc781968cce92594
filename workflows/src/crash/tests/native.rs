//! C and C++: sanitizer reports and gdb backtraces.

use super::{assert_different, assert_same, fp};
use crate::crash::Language;

const BASE: &str = "=================================================================
==4242==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000014 at pc 0x55a1b2c3d4e5 bp 0x7ffd1 sp 0x7ffd0
READ of size 4 at 0x602000000014 thread T0
    #0 0x55a1b2c3d4e5 in png::Decoder::ReadRow(unsigned char*, int) /home/dev/png/src/decoder.cc:120:15
    #1 0x55a1b2c3d5f6 in png::Decoder::Decode(std::vector<unsigned char, std::allocator<unsigned char> > const&) /home/dev/png/src/decoder.cc:80:7
    #2 0x55a1b2c3d6a7 in LLVMFuzzerTestOneInput /home/dev/png/fuzz/decode_fuzzer.cc:12:3
    #3 0x55a1b2c3d7b8 in fuzzer::Fuzzer::ExecuteCallback(unsigned char const*, unsigned long) /src/llvm-project/compiler-rt/lib/fuzzer/FuzzerLoop.cpp:611:15
    #4 0x7f1234567890 in __libc_start_main (/lib/x86_64-linux-gnu/libc.so.6+0x29d8f)
    #5 0x55a1b2c3d8c9 in _start (/out/png_fuzzer+0x4a2b3c)

0x602000000014 is located 0 bytes to the right of 4-byte region [0x602000000010,0x602000000014)
SUMMARY: AddressSanitizer: heap-buffer-overflow /home/dev/png/src/decoder.cc:120:15 in png::Decoder::ReadRow(unsigned char*, int)
";

#[test]
fn the_same_crash_elsewhere_fingerprints_the_same() {
    assert_same(
        BASE,
        &[(
            "other pid, addresses, build paths, lines and an inlined clone",
            "==17==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020000000f4 at pc 0x4c1d2e bp 0x7ffe2 sp 0x7ffe1
READ of size 8 at 0x6020000000f4 thread T3
    #0 0x4c1d2e in png::Decoder::ReadRow(unsigned char*, int) const /src/png/src/decoder.cc:122:9
    #1 0x4c1e3f in png::Decoder::Decode(std::vector<unsigned char, std::allocator<unsigned char> > const&) (.isra.0) /src/png/src/decoder.cc:82
    #2 0x4c1f40 in LLVMFuzzerTestOneInput /src/png/fuzz/decode_fuzzer.cc:12:3
",
        )],
    );
}

#[test]
fn other_code_paths_fingerprint_differently() {
    assert_different(
        BASE,
        &[
            (
                "a write instead of a read",
                &BASE.replace("READ of size", "WRITE of size"),
            ),
            ("another top frame", &BASE.replace("ReadRow", "ReadHeader")),
            (
                "another error",
                &BASE.replace("heap-buffer-overflow", "heap-use-after-free"),
            ),
        ],
    );
}

#[test]
fn the_type_drops_the_tool_addresses_and_sizes() {
    let f = fp(BASE);
    assert_eq!(f.language, Language::Native);
    assert_eq!(f.crash_type, "heap-buffer-overflow READ");
    assert_eq!(f.frames, ["png::Decoder::ReadRow", "png::Decoder::Decode"]);
    assert_eq!(f.title, "heap-buffer-overflow READ in Decoder::ReadRow");
}

#[test]
fn ubsan_runtime_errors_keep_their_kind_only() {
    let report = |values: &str| {
        format!(
            "src/math/scale.cc:41:17: runtime error: signed integer overflow: {values} cannot be represented in type 'int'
    #0 0x4d2e1f in math::Scale(int, int) src/math/scale.cc:41:17
    #1 0x4d2f20 in app::Resize(app::Image&) src/app/resize.cc:77:5
"
        )
    };
    let f = fp(&report("2147483647 + 1"));
    assert_eq!(f.crash_type, "runtime error: signed integer overflow");
    assert_eq!(fp(&report("1073741824 * 4")).hash, f.hash);
}

#[test]
fn gdb_backtraces_are_read_too() {
    let bt = |addr: &str, argv: &str| {
        format!(
            "Program received signal SIGSEGV, Segmentation fault.
#0  {addr} in parse_config (path=0x0) at src/config.c:42
#1  0x0000555555555189 in load (argc=1, argv={argv}) at src/load.c:10
#2  0x00005555555551a0 in main (argc=1, argv={argv}) at src/main.c:5
"
        )
    };
    let f = fp(&bt("0x000055555555513d", "0x7fffffffe3c8"));
    assert_eq!(f.frames, ["parse_config", "load"]);
    assert_eq!(fp(&bt("0x00005602a1b2c13d", "0x7ffc0a1b2c3d")).hash, f.hash);
}
