//! `sandbox`: start the simulated Ivoris and HubSpot APIs and print how to
//! reach them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use ivoris_hubspot_sync::hubspot::Tier;
use ivoris_hubspot_sync::sandbox::{
    self, BatchFailures, FaultProfile, PortalSeed, Sandbox, SandboxOptions, Size,
};
use ivoris_hubspot_sync::settings::Settings;

/// Options of `sandbox`.
#[derive(clap::Args)]
pub struct SandboxArgs {
    /// Seed of the synthetic practices and of the fault dice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Amount of synthetic data per location.
    #[arg(long, value_enum, default_value_t = Size::Medium)]
    size: Size,
    /// Faults both simulations inject.
    #[arg(long, value_enum, default_value_t = FaultProfile::None)]
    faults: FaultProfile,
    /// HubSpot port; Ivoris listens on the next one. 0 picks two free ports.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// HubSpot tier whose rate limits are enforced.
    #[arg(long, value_enum, default_value_t = Tier::Professional)]
    tier: Tier,
    /// Switch HubSpot's rate limits off (benchmarks).
    #[arg(long)]
    no_rate_limits: bool,
    /// Milliseconds before a HubSpot write becomes visible to search.
    #[arg(long, default_value_t = 1000)]
    search_lag_ms: u64,
    /// Simulate a portal where the appointments object is not activated.
    #[arg(long)]
    appointments_disabled: bool,
    /// Milliseconds every Ivoris answer takes.
    #[arg(long, default_value_t = 0)]
    ivoris_latency_ms: u64,
    /// Milliseconds every HubSpot answer takes.
    #[arg(long, default_value_t = 0)]
    hubspot_latency_ms: u64,
    /// A fragile Ivoris: the faster one installation is asked, the more 504s.
    #[arg(long)]
    ivoris_fragile: bool,
    /// How batch upserts and updates answer failed inputs: per input (207)
    /// or by refusing the whole call over the first bad one.
    #[arg(long, value_enum, default_value_t = BatchFailures::MultiStatus)]
    batch_failures: BatchFailures,
    /// What the HubSpot portal holds at the start: nothing, the contacts
    /// a previous integration left (every second patient with an e-mail),
    /// or its whole portal (`legacy`: contacts, deals per appointment,
    /// duplicates, records made by hand).
    #[arg(long, value_enum, default_value_t = PortalSeed::Empty)]
    portal: PortalSeed,
    /// Short for `--portal legacy`: the portal the previous integration left.
    #[arg(long, conflicts_with = "portal")]
    legacy_portal: bool,
    /// Also write a ready settings file for this sandbox (secrets stay out of it).
    #[arg(long, value_name = "PATH")]
    write_config: Option<PathBuf>,
}

pub fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let loopback = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let options = SandboxOptions {
        seed: args.seed,
        size: args.size,
        faults: args.faults,
        tier: args.tier,
        rate_limits: !args.no_rate_limits,
        search_index_lag: Duration::from_millis(args.search_lag_ms),
        appointments_enabled: !args.appointments_disabled,
        ivoris_latency: Duration::from_millis(args.ivoris_latency_ms),
        hubspot_latency: Duration::from_millis(args.hubspot_latency_ms),
        ivoris_fragile: args.ivoris_fragile,
        batch_failures: args.batch_failures,
        portal: if args.legacy_portal {
            PortalSeed::Legacy
        } else {
            args.portal
        },
        hubspot_addr: loopback(args.port),
        ivoris_addr: loopback(if args.port == 0 {
            0
        } else {
            args.port.saturating_add(1)
        }),
    };
    let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
    runtime.block_on(async move {
        let sandbox = Sandbox::start(options)
            .await
            .context("Sandbox konnte nicht starten / sandbox failed to start")?;
        print_sandbox(&sandbox);
        if let Some(path) = &args.write_config {
            write_sandbox_config(&sandbox, path)?;
            println!(
                "Einstellungen geschrieben / settings written: {}",
                path.display()
            );
        }
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl+C")?;
        sandbox.shutdown().await;
        Ok(())
    })
}

fn print_sandbox(sandbox: &Sandbox) {
    use sandbox::credentials::*;
    println!("Sandbox läuft (Strg+C beendet) / sandbox running (Ctrl+C stops)");
    println!("HubSpot  {}", sandbox.hubspot_url);
    for location in &sandbox.locations {
        println!(
            "Ivoris   {:<12} {}  ({})",
            location.key, location.ivoris_url, location.name
        );
    }
    println!();
    println!("Zugangsdaten / credentials (nur für die Sandbox / sandbox only):");
    println!("export HUBSPOT_TOKEN={HUBSPOT_TOKEN}");
    println!("export IVORIS_PASSWORD={IVORIS_PASSWORD}");
    println!("export IVORIS_API_KEY={IVORIS_API_KEY}");
}

fn write_sandbox_config(sandbox: &Sandbox, path: &std::path::Path) -> anyhow::Result<()> {
    let mut settings = Settings::for_sandbox(&sandbox.hubspot_url, &sandbox.locations, None);
    // The synthetic practices live on the sandbox's own clock.
    settings.sync.simulated_now = Some(sandbox.ivoris.now());
    settings.save(path)?;
    Ok(())
}
