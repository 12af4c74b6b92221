//! Generation time and record counts of the synthetic world per size.
//!
//! Run with `cargo bench --bench world_generation`; `Large` must stay under
//! ten seconds in release mode because the benchmarks and the load tests
//! start from it.

use std::time::Instant;

use ivoris_hubspot_sync::sandbox::Size;
use ivoris_hubspot_sync::sandbox::data::World;

fn main() {
    let sizes: Vec<Size> = match std::env::var("WORLD_SIZES").as_deref() {
        Ok("small") => vec![Size::Small],
        Ok("medium") => vec![Size::Small, Size::Medium],
        _ => vec![Size::Small, Size::Medium, Size::Large],
    };
    for size in sizes {
        let started = Instant::now();
        let world = World::generate(42, size);
        let elapsed = started.elapsed();
        println!("{size:?}: generated in {:.3} s", elapsed.as_secs_f64());
        for location in &world.locations {
            println!(
                "  {:<10} patients {:>6}  appointments {:>6}  entries {:>7}  (pending {})",
                location.key,
                location.patients.len(),
                location.appointments.len(),
                location.entries.len(),
                location.pending_entries.len()
            );
        }
    }
}
