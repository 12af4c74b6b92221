//! The health of both connections, as last seen: per location whether its
//! Ivoris answered, and whether HubSpot accepted the app's calls. Written by
//! every run and every connection test, read by the overview — so after a
//! restart the practice still sees that Leipzig's Ivoris was unreachable
//! this morning, not a blank.

use rusqlite::params;

use super::{Ledger, LedgerError, now};

/// Schema step: the last known state of each connection.
pub(super) const HEALTH_MIGRATION: &str = r#"
CREATE TABLE connection_health (
    side         TEXT NOT NULL CHECK (side IN ('ivoris', 'hubspot')),
    location_key TEXT NOT NULL,
    ok           INTEGER NOT NULL CHECK (ok IN (0, 1)),
    message      TEXT,
    checked_at   TEXT NOT NULL,
    last_ok_at   TEXT,
    PRIMARY KEY (side, location_key)
) STRICT, WITHOUT ROWID;
"#;

/// Which connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The Ivoris web service of one location.
    Ivoris,
    /// The HubSpot portal (one for all locations).
    HubSpot,
}

impl Side {
    fn key(self) -> &'static str {
        match self {
            Side::Ivoris => "ivoris",
            Side::HubSpot => "hubspot",
        }
    }
}

/// The last known state of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Which connection.
    pub side: Side,
    /// Location key for Ivoris; empty for HubSpot.
    pub location_key: String,
    /// Whether the last contact worked.
    pub ok: bool,
    /// Why it did not, German / English (never personal data).
    pub message: Option<String>,
    /// When it was last tried (UTC, ISO-8601).
    pub checked_at: String,
    /// When it last worked, if ever.
    pub last_ok_at: Option<String>,
}

impl Ledger {
    /// Records how a contact with a connection went. `location` is `None`
    /// for HubSpot. A failure keeps the time it last worked.
    pub fn record_health(
        &self,
        side: Side,
        location: Option<&str>,
        outcome: Result<(), &str>,
    ) -> Result<(), LedgerError> {
        let at = now();
        let (ok, message) = match outcome {
            Ok(()) => (true, None),
            Err(message) => (false, Some(message)),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO connection_health (side, location_key, ok, message, checked_at, last_ok_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?3 THEN ?5 END)
                 ON CONFLICT (side, location_key) DO UPDATE SET
                     ok = excluded.ok,
                     message = excluded.message,
                     checked_at = excluded.checked_at,
                     last_ok_at = coalesce(excluded.last_ok_at, connection_health.last_ok_at)",
            )?
            .execute(params![
                side.key(),
                location.unwrap_or(""),
                ok,
                message,
                at
            ])?;
        Ok(())
    }

    /// Every connection's last known state.
    pub fn health(&self) -> Result<Vec<Health>, LedgerError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT side, location_key, ok, message, checked_at, last_ok_at
             FROM connection_health ORDER BY side, location_key",
        )?;
        let rows = statement.query_map([], |row| {
            let side: String = row.get(0)?;
            Ok(Health {
                side: if side == "hubspot" {
                    Side::HubSpot
                } else {
                    Side::Ivoris
                },
                location_key: row.get(1)?,
                ok: row.get(2)?,
                message: row.get(3)?,
                checked_at: row.get(4)?,
                last_ok_at: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
