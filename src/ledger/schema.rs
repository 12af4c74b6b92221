//! The ledger's schema as a list of versioned migrations.
//!
//! Migrations are append-only: a released migration is never edited, a
//! change is a new one, so every ledger on every practice PC upgrades along
//! the same path. `PRAGMA user_version` holds the number applied. Table names
//! leave room for what later steps add (`cursors`, `cases`, `id_map`,
//! `outbox`, `runs`). Dates and times are ISO-8601 text, which sorts
//! correctly; Ivoris date-times stay local Berlin time as sent, bookkeeping
//! times (`first_seen`, `updated_at`, `created_at`) are UTC with `Z`.

use rusqlite_migration::{M, Migrations};

/// Version 1: locations and the mirror of Ivoris records.
///
/// Every mirror table is keyed by `(location_key, ivoris_id)` because each
/// location has its own Ivoris database; `record` is the stored JSON (minus
/// fields the app never needs), `content_hash` its blake3 hash, compared
/// before writing so unchanged records are not rewritten.
const V1_MIRROR: &str = r#"
CREATE TABLE locations (
    key         TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    brand       TEXT,
    ivoris_url  TEXT NOT NULL,
    profile_id  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE patients (
    location_key      TEXT NOT NULL REFERENCES locations (key),
    ivoris_id         TEXT NOT NULL,
    human_readable_id TEXT,
    firstname         TEXT,
    lastname          TEXT,
    birthday          TEXT,
    gender            TEXT,
    email             TEXT,
    phone             TEXT,
    mobile            TEXT,
    zip               TEXT,
    city              TEXT,
    last_modified     TEXT,
    record            TEXT NOT NULL,
    content_hash      TEXT NOT NULL,
    first_seen        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (location_key, ivoris_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX patients_by_email ON patients (email COLLATE NOCASE) WHERE email IS NOT NULL;
CREATE INDEX patients_by_birthday ON patients (birthday, lastname) WHERE birthday IS NOT NULL;
CREATE INDEX patients_by_last_modified ON patients (location_key, last_modified);

CREATE TABLE appointments (
    location_key       TEXT NOT NULL REFERENCES locations (key),
    ivoris_id          TEXT NOT NULL,
    patient_id         TEXT,
    profile_id         TEXT,
    practitioner_id    TEXT,
    chair_id           TEXT,
    template_id        TEXT,
    type_label         TEXT,
    start              TEXT,
    duration_minutes   INTEGER,
    state              TEXT,
    confirmation_state TEXT,
    last_modified      TEXT,
    record             TEXT NOT NULL,
    content_hash       TEXT NOT NULL,
    first_seen         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    PRIMARY KEY (location_key, ivoris_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX appointments_by_patient ON appointments (location_key, patient_id, start);
CREATE INDEX appointments_by_start ON appointments (location_key, start);

CREATE TABLE document_entries (
    location_key    TEXT NOT NULL REFERENCES locations (key),
    ivoris_id       TEXT NOT NULL,
    patient_id      TEXT,
    profile_id      TEXT,
    practitioner_id TEXT,
    date            TEXT,
    entry_type      TEXT,
    catalogue       TEXT,
    code            TEXT,
    amount_cents    INTEGER,
    quantity        REAL,
    factor          REAL,
    last_modified   TEXT,
    record          TEXT NOT NULL,
    content_hash    TEXT NOT NULL,
    first_seen      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (location_key, ivoris_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX document_entries_by_patient ON document_entries (location_key, patient_id, date);
CREATE INDEX document_entries_by_date ON document_entries (location_key, date);

CREATE TABLE chairs (
    location_key TEXT NOT NULL REFERENCES locations (key),
    ivoris_id    TEXT NOT NULL,
    name         TEXT,
    record       TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    first_seen   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (location_key, ivoris_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE practitioners (
    location_key TEXT NOT NULL REFERENCES locations (key),
    ivoris_id    TEXT NOT NULL,
    abbreviation TEXT,
    firstname    TEXT,
    lastname     TEXT,
    record       TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    first_seen   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (location_key, ivoris_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE appointment_templates (
    location_key     TEXT NOT NULL REFERENCES locations (key),
    ivoris_id        TEXT NOT NULL,
    name             TEXT,
    duration_minutes INTEGER,
    record           TEXT NOT NULL,
    content_hash     TEXT NOT NULL,
    first_seen       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (location_key, ivoris_id)
) STRICT, WITHOUT ROWID;
"#;

/// Version 2: quarantine of bad input and the audit log of user actions.
///
/// A record that fails again on the next sync must not pile up a new row
/// each time, so open entries are unique per source, record, field and raw
/// payload (`raw_hash`).
const V2_QUARANTINE_AUDIT: &str = r#"
CREATE TABLE quarantine (
    id           INTEGER PRIMARY KEY,
    location_key TEXT NOT NULL REFERENCES locations (key),
    source       TEXT NOT NULL,
    record_id    TEXT,
    field        TEXT,
    reason_de    TEXT NOT NULL,
    reason_en    TEXT NOT NULL,
    raw          TEXT NOT NULL,
    raw_hash     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    resolved_at  TEXT
) STRICT;
CREATE UNIQUE INDEX quarantine_open_once
    ON quarantine (location_key, source, ifnull(record_id, ''), ifnull(field, ''), raw_hash)
    WHERE resolved_at IS NULL;
CREATE INDEX quarantine_by_location ON quarantine (location_key, created_at);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    details TEXT NOT NULL CHECK (json_valid(details))
) STRICT;
CREATE INDEX audit_log_by_subject ON audit_log (subject, at);
"#;

/// Every migration in order. Append only.
const STEPS: &[M<'static>] = &[
    M::up(V1_MIRROR).foreign_key_check(),
    M::up(V2_QUARANTINE_AUDIT).foreign_key_check(),
    M::up(super::cursors::CURSORS_MIGRATION).foreign_key_check(),
    M::up(super::outbox::OUTBOX_MIGRATION).foreign_key_check(),
    M::up(super::runs::RUNS_MIGRATION).foreign_key_check(),
    M::up(crate::mapping::store::MIGRATION_MAPPING_VERSIONS).foreign_key_check(),
    M::up(super::cases::CASES_MIGRATION).foreign_key_check(),
    M::up(super::reconciliation::RECONCILIATION_MIGRATION).foreign_key_check(),
    M::up(super::health::HEALTH_MIGRATION).foreign_key_check(),
    M::up(crate::mapping::store::MIGRATION_MAPPING_APPLIED).foreign_key_check(),
    M::up(super::reviews::REVIEWS_MIGRATION).foreign_key_check(),
    M::up(super::adoption::ADOPTION_MIGRATION).foreign_key_check(),
    M::up(super::deletions::DELETIONS_MIGRATION).foreign_key_check(),
    M::up(super::portal::PORTAL_MIGRATION).foreign_key_check(),
    M::up(super::identity::ALIASES_MIGRATION).foreign_key_check(),
    M::up(super::imports::IMPORTS_MIGRATION).foreign_key_check(),
    M::up(super::erasure::ERASURE_MIGRATION).foreign_key_check(),
    M::up(super::outbox::CONFIRMED_VALUES_MIGRATION).foreign_key_check(),
];

/// Schema version of a ledger created by this build.
pub const LATEST_VERSION: usize = STEPS.len();

/// All migrations in order; `migrations().to_version(conn, n)` builds an
/// older ledger for upgrade tests.
pub fn migrations() -> Migrations<'static> {
    Migrations::from_slice(STEPS)
}
