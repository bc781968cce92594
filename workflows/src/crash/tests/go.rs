//! Go panics and goroutine dumps.

use super::{assert_different, assert_same, fp};
use crate::crash::Language;

const BASE: &str = "panic: runtime error: index out of range [5] with length 3

goroutine 17 [running]:
github.com/acme/shop/cart.(*Cart).Item(0xc000010000, 0x5)
\t/home/bob/go/src/github.com/acme/shop/cart/cart.go:42 +0x1d
github.com/acme/shop/api.handleCart(0xc0000a4000, {0x7ff, 0x3})
\t/home/bob/go/src/github.com/acme/shop/api/cart.go:88 +0x85
net/http.HandlerFunc.ServeHTTP(0xc0000b2000, {0x9d1c40, 0xc0000fe000}, 0xc0000b8100)
\t/usr/local/go/src/net/http/server.go:2136 +0x29
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3086 +0x4cc
";

#[test]
fn the_same_crash_elsewhere_fingerprints_the_same() {
    assert_same(
        BASE,
        &[
            (
                "other goroutine, arguments, index, paths and Go version",
                "panic: runtime error: index out of range [7] with length 2

goroutine 4242 gp=0xc000102380 m=5 mp=0xc000100008 [running]:
github.com/acme/shop/cart.(*Cart).Item(...)
\t/build/src/cart/cart.go:45
github.com/acme/shop/api.handleCart(0xc000a1e000, {0x1ff, 0x9})
\t/build/src/api/cart.go:91 +0x91
net/http.HandlerFunc.ServeHTTP(0xc0000c4000, {0x9d1c40, 0xc000ffe000}, 0xc0000c8100)
\t/usr/lib/go-1.22/src/net/http/server.go:2166 +0x29
",
            ),
            (
                "recovered by net/http and re-panicked",
                "panic: runtime error: index out of range [5] with length 3 [recovered]
\tpanic: runtime error: index out of range [5] with length 3

goroutine 17 [running]:
net/http.(*conn).serve.func1()
\t/usr/local/go/src/net/http/server.go:1898 +0xbe
panic({0x6c5e40?, 0xc0000aa018?})
\t/usr/local/go/src/runtime/panic.go:770 +0x132
github.com/acme/shop/cart.(*Cart).Item(0xc000010000, 0x5)
\t/app/cart/cart.go:42 +0x1d
github.com/acme/shop/api.handleCart(0xc0000a4000, {0x7ff, 0x3})
\t/app/api/cart.go:88 +0x85
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
                "a nil dereference at the same place",
                &BASE.replace(
                    "panic: runtime error: index out of range [5] with length 3",
                    "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a5f1d]",
                ),
            ),
            ("another top frame", &BASE.replace("(*Cart).Item", "(*Cart).Remove")),
            ("a custom panic", &BASE.replace("runtime error: index out of range [5] with length 3", "cart is locked")),
        ],
    );
}

#[test]
fn custom_panic_values_do_not_count_but_the_site_does() {
    let site = |msg: &str| BASE.replace("runtime error: index out of range [5] with length 3", msg);
    let f = fp(&site("user 12 not found"));
    assert_eq!(f.crash_type, "panic");
    assert_eq!(fp(&site("user 99 not found in shard eu-3")).hash, f.hash);
    assert_eq!(f.title, "panic in cart.(*Cart).Item");
}

#[test]
fn runtime_errors_keep_their_kind_without_values() {
    let f = fp(BASE);
    assert_eq!(f.language, Language::Go);
    assert_eq!(f.crash_type, "runtime error: index out of range");
    assert_eq!(
        f.frames,
        [
            "github.com/acme/shop/cart.(*Cart).Item",
            "github.com/acme/shop/api.handleCart"
        ]
    );
}

#[test]
fn closures_lose_their_numbers() {
    let with = |n: &str| BASE.replace("api.handleCart(", &format!("api.handleCart.func{n}("));
    assert_eq!(fp(&with("1")).hash, fp(&with("3")).hash);
}

#[test]
fn a_deadlock_dump_is_a_runtime_fatal_error() {
    let dump = "fatal error: all goroutines are asleep - deadlock!

goroutine 1 [chan receive]:
main.main()
\t/tmp/sandbox123/prog.go:8 +0x2d
exit status 2
";
    let f = fp(dump);
    assert_eq!(
        f.crash_type,
        "fatal error: all goroutines are asleep - deadlock!"
    );
    assert_eq!(f.frames, ["main.main"]);
    assert_eq!(
        fp(&dump
            .replace("sandbox123", "sandbox987")
            .replace(":8 ", ":9 "))
        .hash,
        f.hash
    );
}
