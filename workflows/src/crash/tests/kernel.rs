//! Linux kernel oopses and panics.

use super::{assert_different, assert_same, fp};
use crate::crash::Language;

const BASE: &str =
    "[   42.123456] ==================================================================
[   42.123457] BUG: KASAN: use-after-free in tcp_retransmit_skb+0x1a/0x60
[   42.123458] Read of size 8 at addr ffff888012345678 by task syz-executor.3/12345
[   42.123460] CPU: 1 PID: 12345 Comm: syz-executor.3 Not tainted 6.1.0-rc1+ #42
[   42.123461] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)
[   42.123462] Call Trace:
[   42.123463]  <TASK>
[   42.123464]  dump_stack_lvl+0x4c/0x70
[   42.123465]  print_report+0x171/0x4a0
[   42.123466]  kasan_report+0xb1/0xe0
[   42.123467]  tcp_retransmit_skb+0x1a/0x60
[   42.123468]  tcp_retransmit_timer+0x2c1/0x920
[   42.123469]  tcp_write_timer_handler+0x1b3/0x3a0
[   42.123470]  tcp_write_timer+0x9a/0x120
[   42.123471]  call_timer_fn+0x23/0x130
[   42.123472]  </TASK>
";

#[test]
fn the_same_crash_elsewhere_fingerprints_the_same() {
    assert_same(
        BASE,
        &[(
            "other clock, task, kernel, offsets, caller ids, unreliable frames and clones",
            "[  901.000001][ T9876] BUG: KASAN: use-after-free in tcp_retransmit_skb+0x2b/0x70
[  901.000002][ T9876] Read of size 8 at addr ffff88807a1b2c3d by task kworker/1:2/9876
[  901.000003][ T9876] CPU: 0 PID: 9876 Comm: kworker/1:2 Tainted: G        W          6.2.0-next-20230301 #7
[  901.000004][ T9876] Call Trace:
[  901.000005][ T9876]  dump_stack_lvl+0x5c/0x80
[  901.000006][ T9876]  kasan_report+0xc1/0xf0
[  901.000007][ T9876]  ? tcp_retransmit_skb+0x2b/0x70
[  901.000008][ T9876]  tcp_retransmit_skb+0x2b/0x70
[  901.000009][ T9876]  tcp_retransmit_timer.isra.0+0x2d1/0x940
[  901.000010][ T9876]  tcp_write_timer_handler+0x1c3/0x3b0
[  901.000011][ T9876]  tcp_write_timer+0xaa/0x130
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
                "another top frame",
                &BASE.replace("tcp_retransmit_skb+", "tcp_send_ack+"),
            ),
            (
                "another bug",
                &BASE.replace("use-after-free", "slab-out-of-bounds"),
            ),
        ],
    );
}

#[test]
fn the_type_and_frames_skip_the_reporting_machinery() {
    let f = fp(BASE);
    assert_eq!(f.language, Language::Kernel);
    assert_eq!(f.crash_type, "BUG: KASAN: use-after-free");
    assert_eq!(
        f.frames,
        [
            "tcp_retransmit_skb",
            "tcp_retransmit_timer",
            "tcp_write_timer_handler"
        ]
    );
}

#[test]
fn stack_exhaustion_counts_by_entry_and_syscall_wrappers_agree_across_arches() {
    let panic = |arch_entry: &str, top: &str| {
        format!(
            "Kernel panic - not syncing: corrupted stack end detected inside scheduler
Call Trace:
 dump_stack+0x1d3/0x2c6
 panic+0x2ad/0x55f
 __schedule+0x1ec6/0x1ed0
 {top}+0x30/0x108
 __sock_create+0x154/0x560
 __sys_socket+0xc8/0x178
 {arch_entry}+0x4c/0x60
 do_syscall_64+0x1a/0x40
"
        )
    };
    let x86 = fp(&panic("__x64_sys_socket", "sock_alloc"));
    assert_eq!(x86.frames, ["sys_socket", "__sock_create", "sock_alloc"]);
    assert_eq!(
        fp(&panic("__arm64_sys_socket", "sock_alloc")).hash,
        x86.hash
    );
    // Where the stack ran out varies; what the task was doing does not.
    assert_eq!(
        fp(&panic("__x64_sys_socket", "kmem_cache_alloc")).frames[..2],
        x86.frames[..2]
    );
}
