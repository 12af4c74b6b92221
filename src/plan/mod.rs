//! Pure planning rules (DESIGN.md §4, §5): which appointments form a
//! treatment case, the case's deal stage, its revenue per category, and the
//! HubSpot property sets with their content hashes.
//!
//! Everything here is a plain function over data: no I/O, no clock (`now`
//! is a parameter), no HubSpot (stage ids come in resolved). The engine
//! builds the facts from the ledger, calls these functions and writes what
//! changed. The same input always gives the same output, which is what
//! makes re-running a sync drift-free (invariant 4).

pub mod case;
pub mod facts;
pub mod properties;
pub mod revenue;
pub mod stage;

pub use case::{Assignment, Case, CaseEntries, Decision, PatientCases, UnassignedReason, assign};
pub use facts::{AppointmentFacts, EntryFacts, PatientFacts, PatientRange};
pub use properties::{
    DealContext, LocationStages, PropertySet, StageIds, appointment_properties, berlin_instant,
    contact_properties, deal_properties, hubspot_date, hubspot_datetime,
};
pub use revenue::{RevenueByCategory, format_cents, revenue};
pub use stage::{LossReason, StageOutcome, derive_stage, derive_stages, derive_stages_by_span};
