//! The worker's process keeps its memory to itself: no core dump, not dumpable. Its own test
//! binary: hardening changes the whole process.

use wetee_worker::hardening::{harden_process, is_hardened};

#[test]
fn the_worker_process_writes_no_core_and_cannot_be_dumped() {
    assert!(
        !is_hardened(),
        "a fresh process is dumpable: the check proves nothing"
    );
    harden_process().expect("hardened");
    assert!(is_hardened());
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let core = limits
        .lines()
        .find(|line| line.starts_with("Max core file size"))
        .unwrap();
    let numbers: Vec<&str> = core.split_whitespace().skip(4).take(2).collect();
    assert_eq!(numbers, ["0", "0"], "{core}");
}
