//! Java, Kotlin and Android stack traces.

use super::{assert_different, assert_same, fp};
use crate::crash::Language;

const BASE: &str =
    "Exception in thread \"main\" java.lang.IllegalStateException: failed to load order 12345
\tat com.shop.orders.OrderService.load(OrderService.java:57)
\tat com.shop.Main.main(Main.java:12)
Caused by: java.sql.SQLException: connection refused: db-3.internal:5432
\tat java.base/java.net.Socket.connect(Socket.java:633)
\tat com.shop.db.Pool.acquire(Pool.java:41)
\tat com.shop.orders.OrderRepository.lambda$find$0(OrderRepository.java:22)
\tat com.shop.orders.OrderRepository$$Lambda$14/0x0000000800c0b8.apply(Unknown Source)
\tat com.shop.orders.OrderService.load(OrderService.java:55)
\t... 1 more
";

#[test]
fn the_same_crash_elsewhere_fingerprints_the_same() {
    assert_same(
        BASE,
        &[
            (
                "other thread, ids, hosts, lines, lambda numbering and class loader prefixes",
                "Exception in thread \"pool-3-thread-7\" java.lang.IllegalStateException: failed to load order 999
\tat app//com.shop.orders.OrderService.load(OrderService.java:60)
\tat app//com.shop.Main.main(Main.java:13)
Caused by: java.sql.SQLException: connection refused: db-1.internal:5432
\tat java.base@17.0.2/java.net.Socket.connect(Socket.java:640)
\tat app//com.shop.db.Pool.acquire(Pool.java:44)
\tat app//com.shop.orders.OrderRepository.lambda$find$3(OrderRepository.java:25)
\tat app//com.shop.orders.OrderRepository$$Lambda$87/0x00000008001a2c40.apply(Unknown Source)
\tat app//com.shop.orders.OrderService.load(OrderService.java:58)
\t... 1 more
",
            ),
            (
                "logged by Logback with jar suffixes and a middle wrapper",
                "2024-05-01 10:00:00.123 ERROR worker failed
java.lang.RuntimeException: java.lang.IllegalStateException: failed to load order 7
\tat com.shop.Worker.run(Worker.java:20) ~[shop.jar:1.4.2]
Caused by: java.lang.IllegalStateException: failed to load order 7
\tat com.shop.orders.OrderService.load(OrderService.java:57) ~[shop.jar:1.4.2]
\t... 1 common frames omitted
Caused by: java.sql.SQLException: connection refused: db-2.internal:5432
\tat java.net.Socket.connect(Socket.java:633) ~[na:na]
\tat com.shop.db.Pool.acquire(Pool.java:41) ~[shop.jar:1.4.2]
\tat com.shop.orders.OrderRepository.lambda$find$0(OrderRepository.java:22) ~[shop.jar:1.4.2]
\tat com.shop.orders.OrderService.load(OrderService.java:55) ~[shop.jar:1.4.2]
\t... 2 common frames omitted
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
                "another root cause",
                &BASE.replace("java.sql.SQLException", "java.net.ConnectException"),
            ),
            (
                "another root frame",
                &BASE.replace("Pool.acquire(", "Pool.borrow("),
            ),
        ],
    );
}

#[test]
fn the_root_cause_counts() {
    let f = fp(BASE);
    assert_eq!(f.language, Language::Java);
    assert_eq!(f.crash_type, "java.sql.SQLException");
    assert_eq!(
        f.frames,
        [
            "com.shop.db.Pool.acquire",
            "com.shop.orders.OrderRepository.lambda$find",
            "com.shop.orders.OrderService.load"
        ]
    );
    assert_eq!(f.title, "SQLException in Pool.acquire");
}

#[test]
fn a_truncated_root_cause_inherits_the_enclosing_frames() {
    let text = "java.lang.RuntimeException: wrapped
\tat com.shop.Api.handle(Api.java:10)
\tat com.shop.Server.run(Server.java:20)
\tat java.lang.Thread.run(Thread.java:833)
Caused by: java.lang.NumberFormatException: For input string: \"abc\"
\tat java.lang.Integer.parseInt(Integer.java:580)
\t... 3 more
";
    let f = fp(text);
    assert_eq!(f.crash_type, "java.lang.NumberFormatException");
    assert_eq!(f.frames, ["com.shop.Api.handle", "com.shop.Server.run"]);
}

#[test]
fn suppressed_exceptions_and_synthetic_accessors_are_skipped() {
    let text = "java.io.IOException: write failed
\tat com.shop.Export.write(Export.java:30)
\tat com.shop.Export.access$000(Export.java)
\tat com.shop.Export$1.run(Export.java:12)
\tSuppressed: java.io.IOException: close failed
\t\tat com.shop.Export.close(Export.java:40)
\t\t... 2 more
";
    let f = fp(text);
    assert_eq!(f.crash_type, "java.io.IOException");
    assert_eq!(f.frames, ["com.shop.Export.write", "com.shop.Export$1.run"]);
}

#[test]
fn android_fatal_exception_wins_over_earlier_logged_ones() {
    let logcat = "01-02 03:04:05.678  1234  1250 W System.err: java.lang.OutOfMemoryError: Failed to allocate 3178 bytes
01-02 03:04:05.678  1234  1250 W System.err: \tat android.graphics.BitmapFactory.decodeStream(BitmapFactory.java:609)
01-02 03:04:05.678  1234  1250 W System.err: \tat com.example.app.Gallery.load(Gallery.java:88)
01-02 03:04:06.001  1234  1251 E AndroidRuntime: FATAL EXCEPTION: Worker-2
01-02 03:04:06.001  1234  1251 E AndroidRuntime: Process: com.example.app, PID: 1234
01-02 03:04:06.001  1234  1251 E AndroidRuntime: java.lang.NullPointerException: Attempt to invoke virtual method on a null object reference
01-02 03:04:06.001  1234  1251 E AndroidRuntime: \tat com.example.app.Feed.render(Feed.kt:42)
01-02 03:04:06.001  1234  1251 E AndroidRuntime: \tat com.example.app.Feed.-wrap0(Feed.kt)
01-02 03:04:06.001  1234  1251 E AndroidRuntime: \tat com.example.app.Feed$1.onChanged(Feed.kt:30)
01-02 03:04:06.001  1234  1251 E AndroidRuntime: \tat android.os.Handler.dispatchMessage(Handler.java:102)
";
    let f = fp(logcat);
    assert_eq!(f.crash_type, "java.lang.NullPointerException");
    assert_eq!(
        f.frames,
        [
            "com.example.app.Feed.render",
            "com.example.app.Feed$1.onChanged"
        ]
    );
    // The same crash in another process, at other times and pids.
    let other = logcat
        .replace("1234", "4321")
        .replace("03:04:0", "11:12:1")
        .replace("Worker-2", "Worker-5");
    assert_eq!(fp(&other).hash, f.hash);
}
