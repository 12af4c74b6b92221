//! „HubSpot prüfen“ on a big portal (issue 11): 50,000 contacts and
//! 100,000 deals with their associations, listed through the simulated
//! HubSpot API with the Professional tier's rate limit on (190 calls per
//! 10 s, i.e. 19 per second), then grouped.
//!
//! The portal is seeded straight into the sandbox's store. The listing
//! needs 500 contact pages and 1,000 deal pages (100 records each; the
//! deals' contacts come with `associations=contacts` on the same page), so
//! its floor is 1,500 calls / 19 per second ≈ 79 s; it passes at ≤ 1.1 ×
//! that. Grouping (with the 50,000 patients the ledger would know) passes
//! at ≤ 1 s.
//!
//! `cargo bench --bench scan`

use std::sync::Arc;
use std::time::Instant;

use ivoris_hubspot_sync::duplicates::drift::ValueProperties;
use ivoris_hubspot_sync::duplicates::portal::{KnownPatient, LedgerFacts, find};
use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::scan::list_portal;
use ivoris_hubspot_sync::hubspot::{HubSpotClient, HubSpotClientConfig, Tier};
use ivoris_hubspot_sync::sandbox::hubspot::{HubSpotSim, HubSpotSimConfig, router, seed};
use ivoris_hubspot_sync::sandbox::{SandboxOptions, credentials};
use ivoris_hubspot_sync::secrets::Secret;

const CONTACTS: usize = 50_000;
const DEALS_PER_CONTACT: usize = 2;
const PAGE: usize = 100;
/// Professional: 190 calls per 10 s.
const CALLS_PER_SECOND: f64 = 19.0;

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let options = SandboxOptions {
            rate_limits: true,
            tier: Tier::Professional,
            ..SandboxOptions::default()
        };
        let sim = Arc::new(HubSpotSim::new(HubSpotSimConfig::from_options(&options)));
        let seeding = Instant::now();
        sim.seed_clean_portal("magdeburg", CONTACTS, DEALS_PER_CONTACT);
        println!(
            "seeded {CONTACTS} contacts, {} deals in {:.1} s",
            CONTACTS * DEALS_PER_CONTACT,
            seeding.elapsed().as_secs_f64()
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = router(sim.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = HubSpotClient::new(HubSpotClientConfig::new(
            base,
            Default::default(),
            Tier::Professional,
            Secret::new(credentials::HUBSPOT_TOKEN),
        ))
        .expect("client");

        let listed = list_portal(&client, &ValueProperties::default(), &|_| {}, &CancelFlag::new())
            .await
            .expect("listed");
        assert_eq!(listed.contacts.len(), CONTACTS);
        assert_eq!(listed.deals.len(), CONTACTS * DEALS_PER_CONTACT);
        let needed = (CONTACTS.div_ceil(PAGE) + (CONTACTS * DEALS_PER_CONTACT).div_ceil(PAGE)) as u64;
        let floor = needed as f64 / CALLS_PER_SECOND;
        let took = listed.took.as_secs_f64();
        let ratio = took / floor;
        println!(
            "scan: {} list calls (needed {needed}), {took:.1} s, floor {floor:.1} s, {ratio:.2} × floor (≤ 1.10): {}",
            listed.calls,
            verdict(ratio <= 1.10 && listed.calls == needed)
        );

        let facts = LedgerFacts {
            patients: (0..CONTACTS)
                .map(|n| {
                    let p = seed::clean_patient("magdeburg", n);
                    KnownPatient {
                        key: p.key,
                        firstname: Some(p.firstname),
                        lastname: Some(p.lastname),
                        birthday: Some(p.birthday.to_string()),
                        email: Some(p.email),
                    }
                })
                .collect(),
            ..LedgerFacts::default()
        };
        let grouping = Instant::now();
        let findings = find(&listed.contacts, &listed.deals, &facts);
        let grouped = grouping.elapsed().as_secs_f64();
        println!(
            "grouping: {grouped:.3} s (≤ 1 s), {} groups (0 expected): {}",
            findings.groups.len(),
            verdict(grouped <= 1.0 && findings.groups.is_empty())
        );
    });
}
