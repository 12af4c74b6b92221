//! Ledger: migrations and upgrades, connection settings, mirror upserts that
//! write only changes, atomic batches, quarantine and audit log.

use chrono::{NaiveDate, NaiveDateTime};
use ivoris_hubspot_sync::ivoris::wire;
use ivoris_hubspot_sync::ledger::schema::{LATEST_VERSION, migrations};
use ivoris_hubspot_sync::ledger::{
    Counts, Ledger, LedgerError, LocationRow, MirrorOutcome, NewAuditEntry, NewQuarantine,
};
use rusqlite::Connection;
use serde_json::json;

fn location(key: &str) -> LocationRow {
    LocationRow {
        key: key.to_owned(),
        name: format!("Praxis {key}"),
        brand: None,
        ivoris_url: format!("http://127.0.0.1:1/relay/{key}/webservice/api"),
        profile_id: Some("1".to_owned()),
    }
}

fn ledger_with(locations: &[&str]) -> Ledger {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    for key in locations {
        ledger.upsert_location(&location(key)).expect("location");
    }
    ledger
}

fn at(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").ok()
}

fn patient(id: &str, lastname: &str) -> wire::Patient {
    wire::Patient {
        id: id.to_owned(),
        human_readable_id: Some("10234".to_owned()),
        firstname: Some("Jürgen".to_owned()),
        lastname: Some(lastname.to_owned()),
        birthday: at("1985-03-15T00:00:00"),
        gender: Some("Male".to_owned()),
        email: Some("j.weiss@example.de".to_owned()),
        phone: None,
        mobile: Some("+49 170 1234567".to_owned()),
        address: Some(wire::Address {
            street: Some("Breiter Weg 5".to_owned()),
            zip: Some("39104".to_owned()),
            city: Some("Magdeburg".to_owned()),
            country: Some("DE".to_owned()),
        }),
        health_insurance: Some("Statutory".to_owned()),
        current_insurance: Some(wire::Insurance {
            insurance_status: Some("Member".to_owned()),
            insurance_number: Some("A123456789".to_owned()),
        }),
        last_modified: at("2026-02-20T16:42:11"),
    }
}

fn appointment(id: &str, patient: &str, start: &str, state: &str) -> wire::Appointment {
    wire::Appointment {
        id: id.to_owned(),
        profile_id: Some("1".to_owned()),
        patient_id: Some(patient.to_owned()),
        practitioner_id: Some("dr-a".to_owned()),
        dentist_chair_id: Some("chair-1".to_owned()),
        template_id: Some("t-pzr".to_owned()),
        type_label: Some("PZR".to_owned()),
        start: at(start),
        duration_minutes: Some(45),
        state: Some(state.to_owned()),
        confirmation_state: None,
        last_modified: at("2026-02-20T16:42:11"),
    }
}

fn entry(id: &str, patient: &str, amount: f64) -> wire::DocumentEntry {
    wire::DocumentEntry {
        id: id.to_owned(),
        profile_id: Some("1".to_owned()),
        patient_id: Some(patient.to_owned()),
        practitioner_id: Some("dr-a".to_owned()),
        date: NaiveDate::from_ymd_opt(2026, 2, 20),
        entry_type: Some("lst".to_owned()),
        catalogue: Some("GOZ".to_owned()),
        code: Some("2060".to_owned()),
        quantity: Some(1.0),
        factor: Some(2.3),
        amount: Some(amount),
        tooth: Some("16".to_owned()),
        text: Some("Patient klagt über Schmerzen".to_owned()),
        last_modified: None,
    }
}

fn outcome(inserted: usize, updated: usize, unchanged: usize) -> MirrorOutcome {
    MirrorOutcome {
        inserted,
        updated,
        unchanged,
    }
}

fn pragma(ledger: &Ledger, name: &str) -> String {
    ledger
        .connection()
        .query_row(&format!("PRAGMA {name}"), [], |row| {
            row.get::<_, rusqlite::types::Value>(0)
        })
        .map(|value| match value {
            rusqlite::types::Value::Integer(n) => n.to_string(),
            rusqlite::types::Value::Text(text) => text,
            other => format!("{other:?}"),
        })
        .expect("pragma")
}

#[test]
fn migrations_are_valid() {
    migrations().validate().expect("valid migrations");
}

#[test]
fn a_new_file_is_migrated_to_the_latest_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested").join("ledger.sqlite");
    let ledger = Ledger::open(&path).expect("open");
    assert!(path.exists());
    assert_eq!(ledger.schema_version().expect("version"), LATEST_VERSION);
    assert_eq!(ledger.counts(None).expect("counts"), Counts::default());
}

#[test]
fn file_ledger_runs_in_wal_mode_with_foreign_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).expect("open");
    assert_eq!(pragma(&ledger, "journal_mode"), "wal");
    assert_eq!(pragma(&ledger, "foreign_keys"), "1");
    assert_eq!(pragma(&ledger, "synchronous"), "1", "NORMAL");
    assert_ne!(pragma(&ledger, "busy_timeout"), "0");

    let orphan = ledger.connection().execute(
        "INSERT INTO chairs (location_key, ivoris_id, record, content_hash, first_seen, updated_at)
         VALUES ('nowhere', 'c1', '{}', 'h', 'now', 'now')",
        [],
    );
    assert!(orphan.is_err(), "foreign key to locations is enforced");
}

#[test]
fn a_version_1_ledger_with_rows_upgrades_and_keeps_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.sqlite");
    {
        let mut conn = Connection::open(&path).expect("open v1");
        migrations().to_version(&mut conn, 1).expect("v1");
        conn.execute_batch(
            "INSERT INTO locations (key, name, ivoris_url, created_at, updated_at)
                 VALUES ('magdeburg', 'Praxis Magdeburg', 'http://x', 'then', 'then');
             INSERT INTO patients (location_key, ivoris_id, lastname, record, content_hash, first_seen, updated_at)
                 VALUES ('magdeburg', 'p1', 'Weiß', '{}', 'old', 'then', 'then');",
        )
        .expect("rows");
        let missing = conn.query_row("SELECT count(*) FROM quarantine", [], |r| {
            r.get::<_, i64>(0)
        });
        assert!(missing.is_err(), "version 1 has no quarantine yet");
    }

    let mut ledger = Ledger::open(&path).expect("upgrade");
    assert_eq!(ledger.schema_version().expect("version"), LATEST_VERSION);
    let counts = ledger.counts(Some("magdeburg")).expect("counts");
    assert_eq!(counts.patients, 1);
    let id = ledger
        .quarantine(&NewQuarantine {
            location_key: "magdeburg".to_owned(),
            source: "/Patient/v1/AllPatients?page=1".to_owned(),
            record_id: None,
            field: Some("Id".to_owned()),
            reason_de: "Id fehlt".to_owned(),
            reason_en: "Id missing".to_owned(),
            raw: "{}".to_owned(),
        })
        .expect("quarantine exists after upgrade");
    assert!(id.is_some());
    // The old row is rewritten once its content is seen for real.
    let upsert = ledger
        .mirror("magdeburg", &[patient("p1", "Weiß")])
        .expect("upsert");
    assert_eq!(upsert, outcome(0, 1, 0));
}

#[test]
fn a_ledger_from_a_newer_program_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.sqlite");
    {
        let conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "user_version", 99)
            .expect("version");
    }
    let error = Ledger::open(&path).err().expect("refused");
    assert!(
        matches!(error, LedgerError::TooNew { found: 99, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("neueren Programmversion"));
}

#[test]
fn upserts_insert_then_skip_unchanged_then_update_changed() {
    let mut ledger = ledger_with(&["magdeburg"]);
    let batch = vec![patient("p1", "Weiß"), patient("p2", "Müller")];
    assert_eq!(
        ledger.mirror("magdeburg", &batch).expect("first"),
        outcome(2, 0, 0)
    );
    assert_eq!(
        ledger.mirror("magdeburg", &batch).expect("again"),
        outcome(0, 0, 2)
    );
    let changed = vec![patient("p1", "Weiß"), patient("p2", "Müller-Lüdenscheidt")];
    assert_eq!(
        ledger.mirror("magdeburg", &changed).expect("changed"),
        outcome(0, 1, 1)
    );
    let stored = ledger
        .patient("magdeburg", "p2")
        .expect("read")
        .expect("stored");
    assert_eq!(stored.lastname.as_deref(), Some("Müller-Lüdenscheidt"));
    let lastname: String = ledger
        .connection()
        .query_row(
            "SELECT lastname FROM patients WHERE location_key = 'magdeburg' AND ivoris_id = 'p2'",
            [],
            |row| row.get(0),
        )
        .expect("typed column");
    assert_eq!(lastname, "Müller-Lüdenscheidt");
}

#[test]
fn unchanged_records_are_not_rewritten() {
    let mut ledger = ledger_with(&["magdeburg"]);
    let batch = [appointment("a1", "p1", "2026-03-02T09:00:00", "Booked")];
    ledger.mirror("magdeburg", &batch).expect("first");
    let before: String = ledger
        .connection()
        .query_row("SELECT updated_at FROM appointments", [], |r| r.get(0))
        .expect("stamp");
    ledger
        .connection()
        .execute("UPDATE appointments SET updated_at = 'marker'", [])
        .expect("mark");
    ledger.mirror("magdeburg", &batch).expect("again");
    let after: String = ledger
        .connection()
        .query_row("SELECT updated_at FROM appointments", [], |r| r.get(0))
        .expect("stamp");
    assert_eq!(
        after, "marker",
        "no write for an identical record (was {before})"
    );
}

#[test]
fn same_ivoris_id_at_two_locations_is_two_records() {
    let mut ledger = ledger_with(&["magdeburg", "halle"]);
    ledger
        .mirror("magdeburg", &[patient("p1", "Weiß")])
        .expect("magdeburg");
    assert_eq!(
        ledger
            .mirror("halle", &[patient("p1", "Schulz")])
            .expect("halle"),
        outcome(1, 0, 0)
    );
    assert_eq!(ledger.counts(None).expect("all").patients, 2);
    assert_eq!(ledger.counts(Some("halle")).expect("halle").patients, 1);
}

#[test]
fn a_failing_batch_writes_nothing() {
    let mut ledger = ledger_with(&["magdeburg"]);
    let batch = vec![
        appointment("a1", "p1", "2026-03-02T09:00:00", "Booked"),
        appointment("", "p1", "2026-03-03T09:00:00", "Booked"),
    ];
    let error = ledger.mirror("magdeburg", &batch).expect_err("empty id");
    assert!(
        matches!(
            error,
            LedgerError::EmptyId {
                table: "appointments",
                position: 2
            }
        ),
        "{error:?}"
    );
    assert_eq!(ledger.counts(None).expect("counts").appointments, 0);
}

#[test]
fn a_batch_failing_in_the_database_rolls_back() {
    let mut ledger = ledger_with(&["magdeburg"]);
    ledger
        .connection()
        .execute_batch(
            "CREATE TRIGGER refuse_e2 BEFORE INSERT ON document_entries
             WHEN NEW.ivoris_id = 'e2' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .expect("trigger");
    let batch = vec![
        entry("e1", "p1", 101.36),
        entry("e2", "p1", 20.0),
        entry("e3", "p1", 5.0),
    ];
    ledger
        .mirror("magdeburg", &batch)
        .expect_err("second insert fails");
    assert_eq!(ledger.counts(None).expect("counts").document_entries, 0);
}

#[test]
fn unknown_location_is_refused() {
    let mut ledger = ledger_with(&["magdeburg"]);
    let error = ledger
        .mirror("leipzig", &[patient("p1", "Weiß")])
        .expect_err("unknown");
    assert!(
        matches!(error, LedgerError::UnknownLocation(ref key) if key == "leipzig"),
        "{error:?}"
    );
}

#[test]
fn entries_store_cents_and_drop_tooth_and_free_text() {
    let mut ledger = ledger_with(&["magdeburg"]);
    ledger
        .mirror("magdeburg", &[entry("e1", "p1", 101.36)])
        .expect("upsert");
    let (cents, record): (i64, String) = ledger
        .connection()
        .query_row(
            "SELECT amount_cents, record FROM document_entries",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("row");
    assert_eq!(cents, 10136);
    assert!(!record.contains("Schmerzen"), "{record}");
    assert!(!record.contains("\"Tooth\":\"16\""), "{record}");
    let stored = ledger
        .document_entry("magdeburg", "e1")
        .expect("read")
        .expect("stored");
    assert_eq!(stored.text, None);
    assert_eq!(stored.amount_cents(), Some(10136));

    // A change only in fields that are not kept is no change.
    let mut edited = entry("e1", "p1", 101.36);
    edited.text = Some("anderer Text".to_owned());
    assert_eq!(
        ledger.mirror("magdeburg", &[edited]).expect("again"),
        outcome(0, 0, 1)
    );
}

#[test]
fn insurance_numbers_are_not_stored() {
    let mut ledger = ledger_with(&["magdeburg"]);
    ledger
        .mirror("magdeburg", &[patient("p1", "Weiß")])
        .expect("upsert");
    let record: String = ledger
        .connection()
        .query_row("SELECT record FROM patients", [], |row| row.get(0))
        .expect("row");
    assert!(!record.contains("A123456789"), "{record}");
    assert!(record.contains("Statutory"), "{record}");
}

#[test]
fn reference_tables_are_mirrored() {
    let mut ledger = ledger_with(&["magdeburg"]);
    let chairs = [wire::DentistChair {
        id: "c1".into(),
        name: Some("Behandlungszimmer 1".into()),
    }];
    let practitioners = [wire::Practitioner {
        id: "dr-a".into(),
        abbreviation: Some("AB".into()),
        firstname: Some("Anna".into()),
        lastname: Some("Becker".into()),
    }];
    let templates = [wire::AppointmentTemplate {
        id: "t-pzr".into(),
        name: Some("PZR".into()),
        duration_minutes: Some(60),
    }];
    assert_eq!(
        ledger.mirror("magdeburg", &chairs).expect("chairs"),
        outcome(1, 0, 0)
    );
    assert_eq!(
        ledger
            .mirror("magdeburg", &practitioners)
            .expect("practitioners"),
        outcome(1, 0, 0)
    );
    assert_eq!(
        ledger.mirror("magdeburg", &templates).expect("templates"),
        outcome(1, 0, 0)
    );
    let counts = ledger.counts(Some("magdeburg")).expect("counts");
    assert_eq!(
        (
            counts.chairs,
            counts.practitioners,
            counts.appointment_templates
        ),
        (1, 1, 1)
    );
}

#[test]
fn queries_use_the_indexes() {
    let ledger = ledger_with(&["magdeburg"]);
    let plan = |sql: &str| -> String {
        let mut statement = ledger
            .connection()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("plan");
        let rows = statement
            .query_map([], |row| row.get::<_, String>(3))
            .expect("rows");
        rows.map(|row| row.expect("row"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    for (sql, index) in [
        (
            "SELECT * FROM appointments WHERE location_key = 'm' AND patient_id = 'p' ORDER BY start",
            "appointments_by_patient",
        ),
        (
            "SELECT * FROM document_entries WHERE location_key = 'm' AND patient_id = 'p' AND date >= '2026-01-01'",
            "document_entries_by_patient",
        ),
        (
            "SELECT * FROM patients WHERE email = 'a@b.de' COLLATE NOCASE",
            "patients_by_email",
        ),
    ] {
        let plan = plan(sql);
        assert!(plan.contains(index), "{sql}: {plan}");
    }
}

/// Quarantine rows of earlier versions kept tooth, free text and insurance
/// numbers; minimising drops exactly those fields, once.
#[test]
fn quarantined_payloads_of_earlier_versions_lose_what_the_mirror_drops() {
    let mut ledger = ledger_with(&["magdeburg"]);
    let rows = [
        (
            r#"{"Id":"e1","Amount":"abc","Tooth":"36","Text":"Schmerzen"}"#,
            json!({"Id": "e1", "Amount": "abc"}),
        ),
        (
            r#"{"Id":"p1","Birthday":"x","CurrentInsurance":{"InsuranceNumber":"A1","InsuranceStatus":"M"}}"#,
            json!({"Id": "p1", "Birthday": "x", "CurrentInsurance": {"InsuranceStatus": "M"}}),
        ),
        (
            r#"{"Id":"a1","Start":"context"}"#,
            json!({"Id": "a1", "Start": "context"}),
        ),
        ("kein JSON: Text", json!("kein JSON: Text")),
    ];
    for (raw, _) in &rows {
        ledger
            .quarantine(&NewQuarantine {
                location_key: "magdeburg".to_owned(),
                source: "/Documentation/v1/DocumentEntries".to_owned(),
                record_id: None,
                field: None,
                reason_de: "alt".to_owned(),
                reason_en: "old".to_owned(),
                raw: (*raw).to_owned(),
            })
            .expect("quarantined");
    }
    assert_eq!(ledger.minimise_quarantine().expect("minimised"), 2);
    let stored = ledger.quarantined(None).expect("list");
    for ((raw, expected), entry) in rows.iter().zip(&stored) {
        let value: serde_json::Value =
            serde_json::from_str(&entry.item.raw).unwrap_or_else(|_| json!(entry.item.raw.clone()));
        assert_eq!(&value, expected, "{raw}");
    }
    assert_eq!(ledger.minimise_quarantine().expect("again"), 0, "once");
}

#[test]
fn quarantine_round_trip_in_german_and_english() {
    let mut ledger = ledger_with(&["magdeburg", "halle"]);
    let item = NewQuarantine {
        location_key: "magdeburg".to_owned(),
        source: "/Documentation/v1/DocumentEntries".to_owned(),
        record_id: Some("e9".to_owned()),
        field: Some("Amount".to_owned()),
        reason_de: "Betrag ist keine Zahl".to_owned(),
        reason_en: "Amount is not a number".to_owned(),
        raw: r#"{"Id":"e9","Amount":"abc"}"#.to_owned(),
    };
    let id = ledger.quarantine(&item).expect("quarantine").expect("new");
    assert_eq!(
        ledger.quarantine(&item).expect("again"),
        None,
        "same open record is kept once"
    );
    ledger
        .quarantine(&NewQuarantine {
            location_key: "halle".to_owned(),
            ..item.clone()
        })
        .expect("other location");

    let open = ledger.quarantined(Some("magdeburg")).expect("list");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, id);
    assert_eq!(open[0].item, item);
    assert_eq!(open[0].resolved_at, None);
    assert_eq!(ledger.quarantined(None).expect("all").len(), 2);
    assert_eq!(
        ledger
            .counts(Some("magdeburg"))
            .expect("counts")
            .quarantined,
        1
    );

    assert!(ledger.resolve_quarantined(id).expect("resolve"));
    assert!(!ledger.resolve_quarantined(id).expect("twice"));
    assert!(
        ledger
            .quarantined(Some("magdeburg"))
            .expect("list")
            .is_empty()
    );
    assert!(
        ledger.quarantine(&item).expect("after resolve").is_some(),
        "a record failing again after resolution is quarantined anew"
    );
}

#[test]
fn quarantine_for_an_unknown_location_is_refused() {
    let mut ledger = ledger_with(&[]);
    let error = ledger
        .quarantine(&NewQuarantine {
            location_key: "nowhere".to_owned(),
            source: "csv".to_owned(),
            record_id: None,
            field: None,
            reason_de: "x".to_owned(),
            reason_en: "x".to_owned(),
            raw: String::new(),
        })
        .expect_err("unknown location");
    assert!(
        matches!(error, LedgerError::UnknownLocation(_)),
        "{error:?}"
    );
}

#[test]
fn audit_log_keeps_actions_newest_first() {
    let mut ledger = ledger_with(&["magdeburg"]);
    let merge = NewAuditEntry {
        actor: "praxis-admin".to_owned(),
        action: "duplicate.merge".to_owned(),
        subject: "magdeburg:p1".to_owned(),
        details: json!({"primary": "hs-1", "merged": ["hs-2"]}),
    };
    let not_duplicate = NewAuditEntry {
        action: "duplicate.dismiss".to_owned(),
        subject: "magdeburg:p2".to_owned(),
        details: json!({}),
        ..merge.clone()
    };
    let first = ledger.audit(&merge).expect("audit");
    let second = ledger.audit(&not_duplicate).expect("audit");
    assert!(second > first);

    let all = ledger.audit_log(None, 10).expect("log");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].entry, not_duplicate);
    assert_eq!(all[1].entry, merge);
    assert!(!all[1].at.is_empty());
    let about_p1 = ledger.audit_log(Some("magdeburg:p1"), 10).expect("log");
    assert_eq!(about_p1.len(), 1);
    assert_eq!(about_p1[0].entry.details["merged"][0], "hs-2");
    assert_eq!(ledger.audit_log(None, 1).expect("limit").len(), 1);
}

#[test]
fn locations_are_upserted() {
    let mut ledger = ledger_with(&["magdeburg"]);
    let renamed = LocationRow {
        name: "Zahnarztpraxis am Dom".to_owned(),
        brand: Some("Dom".to_owned()),
        ..location("magdeburg")
    };
    ledger.upsert_location(&renamed).expect("update");
    assert_eq!(ledger.locations().expect("locations"), vec![renamed]);
}

#[test]
fn reopening_a_current_ledger_keeps_everything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.sqlite");
    {
        let mut ledger = Ledger::open(&path).expect("open");
        ledger
            .upsert_location(&location("magdeburg"))
            .expect("location");
        ledger
            .mirror("magdeburg", &[patient("p1", "Weiß")])
            .expect("patients");
    }
    let mut ledger = Ledger::open(&path).expect("reopen");
    assert_eq!(ledger.schema_version().expect("version"), LATEST_VERSION);
    assert_eq!(
        ledger
            .mirror("magdeburg", &[patient("p1", "Weiß")])
            .expect("again"),
        outcome(0, 0, 1)
    );
}

#[test]
fn the_same_appointment_twice_in_one_batch_is_stored_once() {
    // Ivoris returns a record on two pages now and then (DESIGN.md §1).
    let mut ledger = ledger_with(&["magdeburg"]);
    let a1 = appointment("a1", "p1", "2026-03-02T09:00:00", "Booked");
    assert_eq!(
        ledger
            .mirror("magdeburg", &[a1.clone(), a1])
            .expect("upsert"),
        outcome(1, 0, 1)
    );
    assert_eq!(ledger.counts(None).expect("counts").appointments, 1);
}

#[test]
fn connection_health_keeps_when_a_connection_last_worked() {
    use ivoris_hubspot_sync::ledger::Side;
    let ledger = ledger_with(&["leipzig"]);
    assert!(
        ledger.health().expect("health").is_empty(),
        "nothing known yet"
    );

    ledger
        .record_health(Side::Ivoris, Some("leipzig"), Ok(()))
        .expect("ok noted");
    let worked = ledger.health().expect("health")[0].clone();
    assert!(worked.ok);
    assert_eq!(
        worked.last_ok_at.as_deref(),
        Some(worked.checked_at.as_str())
    );

    ledger
        .record_health(
            Side::Ivoris,
            Some("leipzig"),
            Err("Zeitüberschreitung / Timeout"),
        )
        .expect("failure noted");
    ledger
        .record_health(Side::HubSpot, None, Err("401 / 401"))
        .expect("HubSpot noted");
    let all = ledger.health().expect("health");
    assert_eq!(all.len(), 2, "one row per connection, not per check");
    let ivoris = all.iter().find(|h| h.side == Side::Ivoris).expect("ivoris");
    assert!(!ivoris.ok);
    assert_eq!(
        ivoris.message.as_deref(),
        Some("Zeitüberschreitung / Timeout")
    );
    assert_eq!(
        ivoris.last_ok_at, worked.last_ok_at,
        "failure keeps the last good time"
    );
    let hubspot = all
        .iter()
        .find(|h| h.side == Side::HubSpot)
        .expect("hubspot");
    assert_eq!(hubspot.location_key, "");
    assert_eq!(hubspot.last_ok_at, None);
}
