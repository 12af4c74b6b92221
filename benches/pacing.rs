//! The pacing comparison on its own (see `scenarios/pacing.rs`): fixed
//! pause, no pause and adaptive pacing side by side against the sandbox's
//! Ivoris, healthy and fragile.
//!
//! Run with `cargo bench --bench pacing` (`PACING_ASKS=N` asks per client).

#[path = "scenarios/pacing.rs"]
mod pacing;

use std::time::Instant;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let runs = runtime.block_on(pacing::compare(pacing::asks()));
    pacing::print_runs(&runs);
    pacing::print_verdicts(&runs);
    println!("\nbench wall time {:.1} s", started.elapsed().as_secs_f64());
}
