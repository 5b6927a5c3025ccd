//! Names the task-dump tier once, as `cfg(leakfree_taskdump)`: tokio can take
//! task dumps only with `--cfg tokio_unstable`, its `taskdump` feature (which
//! leakfree's `taskdump` feature turns on), on Linux, on these architectures.
//! Code then writes `#[cfg(leakfree_taskdump)]` instead of repeating the
//! predicate (and getting it subtly different in one place).

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(leakfree_taskdump)");
    println!("cargo::rerun-if-changed=build.rs");
    let unstable = env::var_os("CARGO_CFG_TOKIO_UNSTABLE").is_some();
    let feature = env::var_os("CARGO_FEATURE_TASKDUMP").is_some();
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let arch = env::var("CARGO_CFG_TARGET_ARCH")
        .is_ok_and(|arch| matches!(arch.as_str(), "aarch64" | "x86" | "x86_64" | "s390x"));
    if unstable && feature && linux && arch {
        println!("cargo::rustc-cfg=leakfree_taskdump");
    }
}
