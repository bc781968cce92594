//! The seccomp filters bwrap installs right before it execs the command (`--add-seccomp-fd`):
//! a denylist of the syscalls that reach kernel attack surface or undo the sandbox, compiled to
//! classic BPF with `seccompiler`, plus two small companions it cannot express.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp filters are not built for the {arch} architecture")]
    UnsupportedArch { arch: &'static str },
    #[error("compiling the seccomp {filter} filter: {source}")]
    Compile {
        filter: &'static str,
        source: seccompiler::BackendError,
    },
}

/// Denied outright with EPERM: debugging other processes, kernel attack surface that build and
/// test tools never need, anything that mounts or enters namespaces (the sandbox's own setup is
/// done by then), kernel loading, file handles (they bypass path-based confinement) and host
/// administration.
const DENIED: &[(&str, libc::c_long)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("kcmp", libc::SYS_kcmp),
    // io_uring can open sockets of any family without socket(2), past the family rule below.
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("fanotify_init", libc::SYS_fanotify_init),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("acct", libc::SYS_acct),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("reboot", libc::SYS_reboot),
    ("syslog", libc::SYS_syslog),
    ("quotactl", libc::SYS_quotactl),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("adjtimex", libc::SYS_adjtimex),
    ("vhangup", libc::SYS_vhangup),
];

/// The socket families a build or test suite needs; the rest (netlink, packet, vsock,
/// bluetooth, ...) reach kernel code the sandbox has no use for.
const ALLOWED_SOCKET_FAMILIES: &[libc::c_int] = &[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6];

/// The obsolete packet socket type (libc deprecates its constant, the kernel still has it).
const SOCK_PACKET: libc::c_int = 10;

/// `clone` flags that would create a namespace. CLONE_NEWTIME is left out: in clone(2) its bit
/// is part of the exit signal, and only clone3 (answered with ENOSYS) can pass it.
const CLONE_NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
];

/// The syscall names the denylist covers, for `errand doctor` and documentation.
pub fn denied_syscalls() -> impl Iterator<Item = &'static str> {
    DENIED.iter().map(|(name, _)| *name)
}

/// The filters as raw BPF programs (the bytes bwrap reads from each `--add-seccomp-fd`). The
/// kernel runs every filter and the strictest answer wins.
pub fn programs() -> Result<Vec<Vec<u8>>, SeccompError> {
    let arch = target_arch()?;
    let mut programs = vec![denylist(arch)?, clone3_enosys(arch)?];
    if arch == TargetArch::x86_64 {
        programs.push(x32_denied());
    }
    Ok(programs.iter().map(|program| to_bytes(program)).collect())
}

fn target_arch() -> Result<TargetArch, SeccompError> {
    let arch = std::env::consts::ARCH;
    match arch {
        "x86_64" => Ok(TargetArch::x86_64),
        "aarch64" => Ok(TargetArch::aarch64),
        other => Err(SeccompError::UnsupportedArch { arch: other }),
    }
}

/// EPERM for every listed syscall, for `socket` outside the allowed families or of raw type,
/// and for `clone` with a namespace flag. seccompiler also kills any process that calls in
/// with another architecture (i386 `int 0x80`), where the numbers mean other syscalls.
fn denylist(arch: TargetArch) -> Result<BpfProgram, SeccompError> {
    let compile = |source| SeccompError::Compile {
        filter: "denylist",
        source,
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .map(|(_, number)| (*number, Vec::new()))
        .collect();

    let family_not_allowed = ALLOWED_SOCKET_FAMILIES
        .iter()
        .map(|family| condition(0, SeccompCmpOp::Ne, *family as u64))
        .collect::<Result<Vec<_>, _>>()
        .map_err(compile)?;
    // SOCK_RAW and SOCK_PACKET need CAP_NET_RAW, which nobody holds here; denying them in the
    // filter as well keeps raw sockets out even if a capability ever leaked in.
    let raw_type = |kind: libc::c_int| {
        condition(1, SeccompCmpOp::MaskedEq(0xf), kind as u64)
            .and_then(|cond| SeccompRule::new(vec![cond]))
    };
    rules.insert(
        libc::SYS_socket,
        vec![
            SeccompRule::new(family_not_allowed).map_err(compile)?,
            raw_type(libc::SOCK_RAW).map_err(compile)?,
            raw_type(SOCK_PACKET).map_err(compile)?,
        ],
    );
    let namespace_flag = CLONE_NAMESPACE_FLAGS
        .iter()
        .map(|flag| {
            let flag = *flag as u32 as u64;
            condition(0, SeccompCmpOp::MaskedEq(flag), flag)
                .and_then(|cond| SeccompRule::new(vec![cond]))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(compile)?;
    rules.insert(libc::SYS_clone, namespace_flag);

    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(compile)?;
    BpfProgram::try_from(filter).map_err(compile)
}

/// clone3 passes its flags in memory, out of a filter's reach; ENOSYS makes glibc fall back
/// to clone(2), whose flags the denylist does inspect.
fn clone3_enosys(arch: TargetArch) -> Result<BpfProgram, SeccompError> {
    let compile = |source| SeccompError::Compile {
        filter: "clone3",
        source,
    };
    let rules = [(libc::SYS_clone3, Vec::new())].into_iter().collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(compile)?;
    BpfProgram::try_from(filter).map_err(compile)
}

/// x32 syscalls carry the x86_64 architecture tag but numbers with bit 30 set, so they would
/// slip past the denylist's exact matches on kernels built with x32 support.
fn x32_denied() -> BpfProgram {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const ARCH_OFFSET: u32 = 4;
    const NR_OFFSET: u32 = 0;
    let load = |offset| stmt(BPF_LD | BPF_W | BPF_ABS, offset);
    vec![
        load(ARCH_OFFSET),
        // Another architecture is the denylist's business (it kills the process): allow here.
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
        load(NR_OFFSET),
        jump(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    ]
}

const BPF_LD: u16 = 0x00;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JMP: u16 = 0x05;
const BPF_JEQ: u16 = 0x10;
const BPF_JGE: u16 = 0x30;
const BPF_K: u16 = 0x00;
const BPF_RET: u16 = 0x06;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn condition(
    arg: u8,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, seccompiler::BackendError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
}

/// The in-memory layout of `struct sock_filter` (native endianness), as the kernel reads it.
fn to_bytes(program: &[sock_filter]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for insn in program {
        bytes.extend_from_slice(&insn.code.to_ne_bytes());
        bytes.push(insn.jt);
        bytes.push(insn.jf);
        bytes.extend_from_slice(&insn.k.to_ne_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_compile_and_fit_a_pipe() {
        let programs = programs().expect("filters");
        assert!(programs.len() >= 2);
        for program in &programs {
            assert_eq!(program.len() % 8, 0);
            // bwrap reads each from a pipe filled before it starts: it must not block.
            assert!(program.len() < 16 * 1024, "{}", program.len());
            // The kernel's limit is 4096 instructions per filter.
            assert!(program.len() / 8 <= 4096);
        }
    }

    #[test]
    fn the_denylist_names_the_notes_list() {
        let names: Vec<&str> = denied_syscalls().collect();
        for required in [
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "keyctl",
            "add_key",
            "request_key",
            "mount",
            "umount2",
            "pivot_root",
            "fsopen",
            "fsmount",
            "move_mount",
            "open_tree",
            "unshare",
            "setns",
            "kexec_load",
            "init_module",
            "finit_module",
            "open_by_handle_at",
            "name_to_handle_at",
        ] {
            assert!(names.contains(&required), "{required} is not denied");
        }
        // Duplicates would mean a typo hid a syscall.
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }

    #[test]
    fn x32_filter_jumps_stay_in_range() {
        let program = x32_denied();
        for (i, insn) in program.iter().enumerate() {
            if insn.code & 0x07 == BPF_JMP {
                assert!(i + 1 + (insn.jt as usize) < program.len());
                assert!(i + 1 + (insn.jf as usize) < program.len());
            }
        }
        assert_eq!(program.last().map(|insn| insn.k), Some(SECCOMP_RET_ALLOW));
    }
}
