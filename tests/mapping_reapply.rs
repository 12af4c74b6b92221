//! Re-applying a mapping version against the sandbox: saving does not
//! change HubSpot, the preview counts exactly what confirming queues, and
//! after the next sync HubSpot has the new values — and nothing else moved.

mod engine_support;

use engine_support::{bed, keyed_state, options, run};
use ivoris_hubspot_sync::engine::reapply::{confirm, preview};
use ivoris_hubspot_sync::ledger::{Ledger, OutboxKind};
use ivoris_hubspot_sync::mapping::store::{applied_version, save_version};
use ivoris_hubspot_sync::mapping::{Category, Counting, Mapping};

/// Pending outbox rows per kind, read from the ledger.
fn pending(ledger_path: &std::path::Path) -> std::collections::BTreeMap<OutboxKind, u64> {
    let ledger = Ledger::open(ledger_path).expect("ledger");
    ledger
        .outbox_counts()
        .expect("counts")
        .by_kind
        .into_iter()
        .filter(|(_, pending, _)| *pending > 0)
        .map(|(kind, pending, _)| (kind, pending))
        .collect()
}

/// The real binary with the sandbox's settings file and credentials.
fn cli(config: &std::path::Path, data_dir: &std::path::Path) -> std::process::Command {
    use ivoris_hubspot_sync::sandbox::credentials;
    let mut command = std::process::Command::new(engine_support::BIN);
    command
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .env("HUBSPOT_TOKEN", credentials::HUBSPOT_TOKEN)
        .env("IVORIS_PASSWORD", credentials::IVORIS_PASSWORD)
        .env("IVORIS_API_KEY", credentials::IVORIS_API_KEY);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_counts_equal_the_writes_queued_after_confirming() {
    let bed = bed(options(41)).await;
    run(&bed.env).await;
    assert!(pending(&bed.env.ledger_path).is_empty());

    // Every filling becomes endodontics, and `pabg` counts as revenue.
    let mut mapping = Mapping::defaults();
    for rule in &mut mapping.categories {
        if rule.category == Category::Fuellung {
            rule.category = Category::Endodontie;
        }
    }
    for rule in &mut mapping.entry_types {
        if rule.entry_type == "pabg" {
            rule.counting = Counting::Revenue;
        }
    }
    let version = {
        let mut ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
        save_version(&mut ledger, &mapping, "test", "Füllung → Endodontie").expect("save")
    };

    // Saved is not applied: the next sync writes nothing.
    let quiet = run(&bed.env).await;
    assert_eq!(quiet.counts.written, 0, "{:?}", quiet.load);
    assert!(pending(&bed.env.ledger_path).is_empty());

    let shown = preview(&bed.env, version).await.expect("preview");
    assert_eq!(shown.version, version);
    assert_eq!(shown.applied, None);
    assert!(shown.category_changes > 0, "{shown:?}");
    assert!(shown.revenue_changes > 0, "{shown:?}");
    let deals_to_write = shown.to_write.get(&OutboxKind::Deal).copied().unwrap_or(0);
    assert!(deals_to_write >= shown.revenue_changes.max(shown.category_changes));
    assert!(!shown.samples.is_empty());
    for sample in &shown.samples {
        for change in &sample.changes {
            assert_ne!(
                change.property, "dealname",
                "no personal data in the preview"
            );
            assert_ne!(change.before, change.after);
        }
    }
    // The preview itself queued nothing.
    assert!(pending(&bed.env.ledger_path).is_empty());
    assert_eq!(
        applied_version(&Ledger::open(&bed.env.ledger_path).expect("ledger")).expect("applied"),
        None
    );

    let done = confirm(&bed.env, version, "test").await.expect("confirm");
    let nonzero = |m: &std::collections::BTreeMap<OutboxKind, u64>| {
        m.iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (*k, *n))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(nonzero(&done.queued), nonzero(&shown.to_write));
    assert_eq!(pending(&bed.env.ledger_path), nonzero(&shown.to_write));

    let applied = run(&bed.env).await;
    assert_eq!(
        applied
            .load
            .written
            .get(&OutboxKind::Deal)
            .copied()
            .unwrap_or(0),
        deals_to_write
    );
    assert_eq!(applied.counts.written, shown.total_to_write());

    // HubSpot now has the new values of every sampled deal.
    let state = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    for sample in &shown.samples {
        let deal = &state.deals[&sample.case_key];
        for change in &sample.changes {
            if change.property == "dealstage" {
                continue;
            }
            assert_eq!(
                deal.get(&change.property).cloned().unwrap_or_default(),
                change.after,
                "{} {}",
                sample.case_key,
                change.property
            );
        }
        let fillings: f64 = deal
            .get("umsatz_fuellung")
            .map_or(Ok(0.0), |v| v.parse())
            .expect("amount");
        assert_eq!(fillings, 0.0, "{}", sample.case_key);
    }

    // Applied: nothing left to change.
    let again = preview(&bed.env, version).await.expect("preview");
    assert_eq!(again.applied, Some(version));
    assert_eq!(again.total_to_write(), 0);
    assert_eq!(
        (
            again.stage_changes,
            again.category_changes,
            again.revenue_changes
        ),
        (0, 0, 0)
    );
}

/// A contact field switched off in „Kontaktfelder“ is cleared in HubSpot at
/// the next sync, not left behind with its last value; the preview names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_field_switched_off_is_cleared_in_hubspot_at_the_next_sync() {
    let bed = bed(options(43)).await;
    run(&bed.env).await;
    let before = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    let with_phone = before
        .contacts
        .values()
        .filter(|c| c.get("phone").is_some_and(|p| !p.is_empty()))
        .count();
    assert!(with_phone > 0, "the sandbox's patients have phone numbers");

    let mut mapping = Mapping::defaults();
    for rule in &mut mapping.contact_fields {
        if rule.property == "phone" {
            rule.enabled = false;
        }
    }
    let version = {
        let mut ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
        save_version(&mut ledger, &mapping, "test", "Telefon aus").expect("save")
    };
    let shown = preview(&bed.env, version).await.expect("preview");
    assert_eq!(shown.cleared_contact_fields, vec!["phone".to_owned()]);
    assert!(
        shown
            .to_write
            .get(&OutboxKind::Contact)
            .copied()
            .unwrap_or(0)
            >= with_phone as u64,
        "{shown:?}"
    );
    confirm(&bed.env, version, "test").await.expect("confirm");
    let applied = run(&bed.env).await;
    assert!(applied.counts.written > 0);

    let after = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    assert_eq!(after.contacts.len(), before.contacts.len());
    for (key, contact) in &after.contacts {
        assert_eq!(
            contact.get("phone").map(String::as_str).unwrap_or(""),
            "",
            "{key} keeps a phone number"
        );
        // Everything else stays as it was.
        let mut expected = before.contacts[key].clone();
        expected.remove("phone");
        let mut actual = contact.clone();
        actual.remove("phone");
        assert_eq!(actual, expected, "{key}");
    }
    // Cleared and confirmed: the next sync writes nothing.
    let quiet = run(&bed.env).await;
    assert_eq!(quiet.counts.written, 0, "{:?}", quiet.load);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_owner_from_the_location_table_reaches_every_deal_of_that_location() {
    let bed = bed(options(42)).await;
    run(&bed.env).await;
    let location = bed.sandbox.locations[0].key.clone();
    let mut mapping = Mapping::defaults();
    mapping
        .locations
        .push(ivoris_hubspot_sync::mapping::LocationRule {
            key: location.clone(),
            owner_id: Some("70001".into()),
            ..Default::default()
        });
    let version = {
        let mut ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
        save_version(&mut ledger, &mapping, "test", "Owner").expect("save")
    };
    let shown = preview(&bed.env, version).await.expect("preview");
    let before = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    let deals_there = before
        .deals
        .keys()
        .filter(|k| k.starts_with(&format!("{location}:")))
        .count() as u64;
    assert!(deals_there > 0);
    assert_eq!(
        shown.to_write.get(&OutboxKind::Deal).copied().unwrap_or(0),
        deals_there
    );
    assert_eq!(
        (
            shown.stage_changes,
            shown.category_changes,
            shown.revenue_changes
        ),
        (0, 0, 0)
    );
    confirm(&bed.env, version, "test").await.expect("confirm");
    run(&bed.env).await;
    let after = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    for (key, deal) in &after.deals {
        let owner = deal.get("hubspot_owner_id").map(String::as_str);
        if key.starts_with(&format!("{location}:")) {
            assert_eq!(owner, Some("70001"), "{key}");
        } else {
            assert_ne!(owner, Some("70001"), "{key}");
        }
    }
}

/// A location whose row names its own HubSpot pipeline: after the preview
/// and confirmation its deals move there, each to the stage of the same
/// label; the deals of the other locations stay where they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_from_the_location_table_takes_that_locations_deals() {
    let bed = bed(options(45)).await;
    run(&bed.env).await;
    let defaults = Mapping::defaults();
    let stage_labels: Vec<&str> = ivoris_hubspot_sync::mapping::Stage::ALL
        .iter()
        .filter_map(|s| defaults.stage_label(*s))
        .collect();
    bed.sandbox
        .hubspot
        .seed_pipeline("Kieferorthopädie", &stage_labels);
    let location = bed.sandbox.locations[1].key.clone();
    let mut mapping = defaults.clone();
    mapping
        .locations
        .push(ivoris_hubspot_sync::mapping::LocationRule {
            key: location.clone(),
            pipeline: Some("Kieferorthopädie".into()),
            ..Default::default()
        });
    let version = {
        let mut ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
        save_version(&mut ledger, &mapping, "test", "Eigene Pipeline").expect("save")
    };
    let before = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    let mine = |key: &String| key.starts_with(&format!("{location}:"));
    let deals_there = before.deals.keys().filter(|k| mine(k)).count() as u64;
    assert!(deals_there > 0 && deals_there < before.deals.len() as u64);

    let shown = preview(&bed.env, version).await.expect("preview");
    assert_eq!(
        shown.to_write.get(&OutboxKind::Deal).copied().unwrap_or(0),
        deals_there
    );
    assert_eq!(shown.stage_changes, deals_there, "{shown:?}");
    let sample = shown.samples.first().expect("a sample");
    assert!(
        sample
            .changes
            .iter()
            .any(|c| c.property == "pipeline" && c.after == "Kieferorthopädie"),
        "{sample:?}"
    );

    confirm(&bed.env, version, "test").await.expect("confirm");
    let loaded = run(&bed.env).await;
    assert_eq!(loaded.dead_letters, 0);
    let after = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    assert_eq!(after.deals.len(), before.deals.len(), "no deal added");
    for (key, deal) in &after.deals {
        let old = &before.deals[key];
        if mine(key) {
            assert_eq!(deal["pipeline"], "Kieferorthopädie", "{key}");
            let stage = old["dealstage"]
                .strip_prefix("Patientenreise / ")
                .expect("was in the default pipeline");
            assert_eq!(
                deal["dealstage"],
                format!("Kieferorthopädie / {stage}"),
                "{key}"
            );
        } else {
            assert_eq!(deal["pipeline"], old["pipeline"], "{key}");
            assert_eq!(deal["dealstage"], old["dealstage"], "{key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_are_listed_by_name_without_the_archived_ones() {
    let bed = bed(options(44)).await;
    let owners = ivoris_hubspot_sync::engine::reapply::owners(&bed.env)
        .await
        .expect("owners");
    assert_eq!(
        owners,
        vec![
            ("70001".to_owned(), "Katrin Schäfer".to_owned()),
            ("70002".to_owned(), "Jörg Lehmann".to_owned()),
            ("70003".to_owned(), "Aylin Öztürk".to_owned()),
            ("70004".to_owned(), "Sven Krüger".to_owned()),
        ]
    );
    // Paged: one owner per page still lists them all.
    let page: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/crm/v3/owners?limit=1&after=3",
            bed.sandbox.hubspot_url
        ))
        .bearer_auth(ivoris_hubspot_sync::sandbox::credentials::HUBSPOT_TOKEN)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(page["results"][0]["id"], "70004");
    assert!(page.get("paging").is_none(), "{page}");
}

/// `mapping apply` of the real binary on the bed's ledger: without `--yes`
/// it only shows the preview, with `--yes` it puts the version in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_previews_and_applies_only_with_yes() {
    let bed = bed(options(45)).await;
    run(&bed.env).await;
    let mut mapping = Mapping::defaults();
    for rule in &mut mapping.entry_types {
        if rule.entry_type == "pabg" {
            rule.counting = Counting::Revenue;
        }
    }
    let version = {
        let mut ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
        save_version(&mut ledger, &mapping, "test", "pabg als Umsatz").expect("save")
    };
    let config = bed.dir.path().join("settings.toml");
    let mut settings = bed.env.settings.clone();
    settings.sync.simulated_now = Some(bed.sandbox.ivoris.now());
    settings.save(&config).expect("settings written");
    let command = |yes: bool| {
        let mut command = cli(&config, &bed.dir.path().join("data"));
        command.args(["mapping", "apply"]);
        if yes {
            command.arg("--yes");
        }
        command
    };
    let mut look = command(false);
    let out = tokio::task::spawn_blocking(move || look.output().expect("runs"))
        .await
        .expect("joined");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text.contains("Mit --yes"), "{text}");
    assert!(pending(&bed.env.ledger_path).is_empty());

    let mut confirm_it = command(true);
    let out = tokio::task::spawn_blocking(move || confirm_it.output().expect("runs"))
        .await
        .expect("joined");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert_eq!(applied_version(&ledger).expect("applied"), Some(version));
    assert!(!pending(&bed.env.ledger_path).is_empty());
}

/// The editor's file requests on the engine side: export writes every
/// table and the ZIP; importing a broken file reports its rows and saves
/// nothing; the unmapped values come with the load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_requests_export_import_and_load() {
    use ivoris_hubspot_sync::engine::mapping_ops::{MappingCommand, MappingEvent, handle};
    let bed = bed(options(46)).await;
    run(&bed.env).await;
    let dir = bed.dir.path().join("export");
    let event = handle(
        &bed.env,
        MappingCommand::Export {
            mapping: Box::new(Mapping::defaults()),
            dir: dir.clone(),
        },
    )
    .await;
    let MappingEvent::Exported(files) = event else {
        panic!("{event:?}")
    };
    assert_eq!(
        files.len(),
        ivoris_hubspot_sync::mapping::TableName::ALL.len() + 1
    );

    let broken = bed.dir.path().join("treatment_categories.csv");
    std::fs::write(&broken, "Katalog;Muster;Kategorie\nGOZ;9000;Zauberei\n").expect("write");
    let event = handle(&bed.env, MappingCommand::Import(broken)).await;
    let MappingEvent::Imported(import) = event else {
        panic!("{event:?}")
    };
    assert!(!import.is_clean());
    assert_eq!(
        import.problems().map(|p| p.row).collect::<Vec<_>>(),
        vec![2]
    );

    let event = handle(&bed.env, MappingCommand::Import(dir.join("zuordnung.zip"))).await;
    let MappingEvent::Imported(import) = event else {
        panic!("{event:?}")
    };
    assert!(import.is_clean());
    assert_eq!(import.mapping, Mapping::defaults());

    let event = handle(&bed.env, MappingCommand::Load).await;
    let MappingEvent::Loaded(state) = event else {
        panic!("{event:?}")
    };
    assert_eq!(state.latest, None);
    assert!(
        state.pipeline_labels.is_some(),
        "{:?}",
        state.pipeline_error
    );
    assert_eq!(state.owners.len(), 4);
    // Every location of the ledger lacks a row in the empty location table.
    assert_eq!(
        state.unmapped.locations.len(),
        bed.sandbox.locations.len(),
        "{:?}",
        state.unmapped
    );
}

/// `mapping import` checks stage labels and the locations' pipelines with
/// HubSpot as the editor does: a pipeline HubSpot lacks is refused with
/// its row, nothing saved; one HubSpot has is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_import_checks_pipelines_with_hubspot() {
    let bed = bed(options(46)).await;
    let defaults = Mapping::defaults();
    let stages: Vec<&str> = ivoris_hubspot_sync::mapping::Stage::ALL
        .iter()
        .filter_map(|s| defaults.stage_label(*s))
        .collect();
    bed.sandbox.hubspot.seed_pipeline("KFO-Reise", &stages);
    let config = bed.dir.path().join("settings.toml");
    bed.env.settings.save(&config).expect("settings written");
    let location = bed.sandbox.locations[0].key.clone();
    let import = |file: &str, text: String| {
        let path = bed.dir.path().join(file);
        std::fs::write(&path, text).expect("csv written");
        let mut command = cli(&config, &bed.dir.path().join("data"));
        command.args(["mapping", "import"]).arg(&path);
        command
    };
    let latest = || {
        let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
        ivoris_hubspot_sync::mapping::store::latest_version(&ledger).expect("latest")
    };

    let mut unknown = import(
        "locations.csv",
        format!("Standort;HubSpot-Pipeline\n{location};Implantate\n"),
    );
    let out = tokio::task::spawn_blocking(move || unknown.output().expect("runs"))
        .await
        .expect("joined");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Zeile 2") && text.contains("Implantate"),
        "{text}"
    );
    assert_eq!(latest(), None, "nothing saved");

    let mut renamed_stage = import(
        "stages.csv",
        "Phase;Bezeichnung in HubSpot;Tage ohne Aktivität\nbooked;Termin gebucht;\nconsulted;Beratung erfolgt;\nin_treatment;In Behandlung;\nwon;Behandlung abgeschlossen;60\nlost;Verloren;\n".to_owned(),
    );
    let out = tokio::task::spawn_blocking(move || renamed_stage.output().expect("runs"))
        .await
        .expect("joined");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Beratung erfolgt"), "{text}");
    assert_eq!(latest(), None, "nothing saved");

    let mut known = import(
        "locations.csv",
        format!("Standort;HubSpot-Pipeline\n{location};KFO-Reise\n"),
    );
    let out = tokio::task::spawn_blocking(move || known.output().expect("runs"))
        .await
        .expect("joined");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(latest(), Some(1));
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let saved = ivoris_hubspot_sync::mapping::store::load_current(&ledger).expect("load");
    assert_eq!(saved.location_pipeline(&location), Some("KFO-Reise"));
}
