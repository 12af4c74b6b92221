//! The mapping tables: everything business-specific the planning rules read
//! (DESIGN.md §7) — appointment types, appointment states, deal stages,
//! treatment categories, entry types and the contact field allow-list.
//!
//! Names in code are English, labels the practice sees are German. The
//! defaults ship as `;`-separated CSV files in `assets/mapping/` (`table`),
//! are checked by [`Mapping::validate`] (`validate`) and versioned in the
//! ledger (`store`). Lookups never guess: an unknown appointment state is
//! `None`, an unknown code is „unklassifiziert“, an unknown appointment type
//! gets the documented default kind and is reported as unmapped.
//!
//! Choices in the shipped defaults (all editable):
//! - an unknown appointment type counts as treatment and may open a case:
//!   it keeps a case open rather than closing or hiding it, and is reported;
//! - Ivoris `InTreatment` is „erschienen“: the patient is in the chair, the
//!   appointment is not completed yet, and the rules only ask "completed?";
//! - `mat` and `lab` are revenue in the category Material/Labor whatever
//!   their code: the patient pays them with the treatment, and as
//!   pass-through costs (domain.md) they stay visible in their own
//!   `umsatz_material_labor` and never name the dominant category; a
//!   practice that wants them out of `amount` sets them to „separat“;
//! - `pabg` is separate, `text` and `note` ignored (DESIGN.md §5);
//! - every appointment type opens a case, including Recall; „Eröffnet Fall:
//!   nein“ is the practice's switch;
//! - street and birthday are in the allow-list but disabled: neither is
//!   needed to reach a patient (health-data minimisation, invariant 7).

pub mod archive;
pub mod diff;
pub mod pattern;
pub mod store;
pub mod table;
pub mod validate;

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub use pattern::{CataloguePattern, CodePattern};
pub use validate::{Problem, RowLines, Severity, TableName};

/// What an appointment type means for cases and stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AppointmentKind {
    /// A first consultation; completing it makes a case „Erstberatung“.
    Consultation,
    /// A treatment session.
    Treatment,
    /// Check-ups and prophylaxis; billed like treatment.
    Routine,
    /// Not part of any case (internal blockers and the like).
    Ignore,
}

impl AppointmentKind {
    /// All kinds, in table order.
    pub const ALL: [AppointmentKind; 4] = [
        AppointmentKind::Consultation,
        AppointmentKind::Treatment,
        AppointmentKind::Routine,
        AppointmentKind::Ignore,
    ];

    /// The German label used in the CSV table and the editor.
    pub fn label(self) -> &'static str {
        match self {
            AppointmentKind::Consultation => "Beratung",
            AppointmentKind::Treatment => "Behandlung",
            AppointmentKind::Routine => "Routine",
            AppointmentKind::Ignore => "ignorieren",
        }
    }

    /// The kind with this German label (case-insensitive).
    pub fn from_label(label: &str) -> Option<AppointmentKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.label().eq_ignore_ascii_case(label.trim()))
    }
}

/// One row of the appointment-type table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentTypeRule {
    /// The Ivoris type label as staff named the template (matched
    /// case-insensitively after trimming).
    pub label: String,
    /// The Ivoris template Id, when the practice wants a row to hold even
    /// if staff rename the template; matched before any label.
    pub template_id: Option<String>,
    /// What the type means for stages.
    pub kind: AppointmentKind,
    /// Whether an appointment of this type may open a new case; `false`
    /// (e.g. pure recall checks) only joins an open case.
    pub opens_case: bool,
}

/// The kind of an appointment type label as the mapping resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedType {
    /// Kind used by the rules.
    pub kind: AppointmentKind,
    /// Whether the appointment may open a case.
    pub opens_case: bool,
    /// `false` when the label is not in the table and the default was used,
    /// so the caller can report it as unmapped.
    pub mapped: bool,
}

/// Normalised appointment state, independent of Ivoris's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AppointmentState {
    Booked,
    Confirmed,
    Arrived,
    Completed,
    Cancelled,
    NoShow,
    Clarified,
}

impl AppointmentState {
    /// All states, in table order.
    pub const ALL: [AppointmentState; 7] = [
        AppointmentState::Booked,
        AppointmentState::Confirmed,
        AppointmentState::Arrived,
        AppointmentState::Completed,
        AppointmentState::Cancelled,
        AppointmentState::NoShow,
        AppointmentState::Clarified,
    ];

    /// German label (CSV table, `termin_status`, `hs_appointment_status`).
    pub fn label(self) -> &'static str {
        match self {
            AppointmentState::Booked => "gebucht",
            AppointmentState::Confirmed => "bestätigt",
            AppointmentState::Arrived => "erschienen",
            AppointmentState::Completed => "abgeschlossen",
            AppointmentState::Cancelled => "abgesagt",
            AppointmentState::NoShow => "nicht erschienen",
            AppointmentState::Clarified => "geklärt",
        }
    }

    /// The state with this German label (case-insensitive).
    pub fn from_label(label: &str) -> Option<AppointmentState> {
        let label = label.trim().to_lowercase();
        Self::ALL.into_iter().find(|s| s.label() == label)
    }

    /// Still expected to happen (booked or confirmed).
    pub fn is_pending(self) -> bool {
        matches!(self, AppointmentState::Booked | AppointmentState::Confirmed)
    }

    /// Did not take place (cancelled or no-show).
    pub fn is_missed(self) -> bool {
        matches!(self, AppointmentState::Cancelled | AppointmentState::NoShow)
    }
}

/// One row of the appointment-state table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRule {
    /// The raw Ivoris value (`Booked`, `NoShow`, …), matched case-insensitively.
    pub ivoris_value: String,
    /// What it means.
    pub state: AppointmentState,
}

/// Logical deal stage (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stage {
    Booked,
    Consulted,
    InTreatment,
    Won,
    Lost,
}

impl Stage {
    /// All stages in pipeline order.
    pub const ALL: [Stage; 5] = [
        Stage::Booked,
        Stage::Consulted,
        Stage::InTreatment,
        Stage::Won,
        Stage::Lost,
    ];

    /// Stable identifier used in the CSV table.
    pub fn key(self) -> &'static str {
        match self {
            Stage::Booked => "booked",
            Stage::Consulted => "consulted",
            Stage::InTreatment => "in_treatment",
            Stage::Won => "won",
            Stage::Lost => "lost",
        }
    }

    /// The stage with this identifier.
    pub fn from_key(key: &str) -> Option<Stage> {
        Self::ALL.into_iter().find(|s| s.key() == key.trim())
    }

    /// Won and lost cases are closed and never reopened.
    pub fn is_closed(self) -> bool {
        matches!(self, Stage::Won | Stage::Lost)
    }
}

/// One row of the stage table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRule {
    /// The logical stage.
    pub stage: Stage,
    /// The HubSpot pipeline stage label it is matched to.
    pub label: String,
}

/// Treatment category of a billing line (DESIGN.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Category {
    Prophylaxe,
    Fuellung,
    Endodontie,
    Parodontologie,
    Chirurgie,
    Implantologie,
    Prothetik,
    Kieferorthopaedie,
    Aesthetik,
    Diagnostik,
    MaterialLabor,
    Unklassifiziert,
}

impl Category {
    /// All categories; this order is also the tie-break of the dominant
    /// category.
    pub const ALL: [Category; 12] = [
        Category::Prophylaxe,
        Category::Fuellung,
        Category::Endodontie,
        Category::Parodontologie,
        Category::Chirurgie,
        Category::Implantologie,
        Category::Prothetik,
        Category::Kieferorthopaedie,
        Category::Aesthetik,
        Category::Diagnostik,
        Category::MaterialLabor,
        Category::Unklassifiziert,
    ];

    /// German label (CSV table, `behandlungskategorie`).
    pub fn label(self) -> &'static str {
        match self {
            Category::Prophylaxe => "Prophylaxe",
            Category::Fuellung => "Füllung",
            Category::Endodontie => "Endodontie",
            Category::Parodontologie => "Parodontologie",
            Category::Chirurgie => "Chirurgie",
            Category::Implantologie => "Implantologie",
            Category::Prothetik => "Prothetik",
            Category::Kieferorthopaedie => "Kieferorthopädie",
            Category::Aesthetik => "Ästhetik",
            Category::Diagnostik => "Diagnostik",
            Category::MaterialLabor => "Material/Labor",
            Category::Unklassifiziert => "unklassifiziert",
        }
    }

    /// Stable ASCII slug of the deal property `umsatz_<slug>`.
    pub fn slug(self) -> &'static str {
        match self {
            Category::Prophylaxe => "prophylaxe",
            Category::Fuellung => "fuellung",
            Category::Endodontie => "endodontie",
            Category::Parodontologie => "parodontologie",
            Category::Chirurgie => "chirurgie",
            Category::Implantologie => "implantologie",
            Category::Prothetik => "prothetik",
            Category::Kieferorthopaedie => "kieferorthopaedie",
            Category::Aesthetik => "aesthetik",
            Category::Diagnostik => "diagnostik",
            Category::MaterialLabor => "material_labor",
            Category::Unklassifiziert => "unklassifiziert",
        }
    }

    /// The category with this label or slug (case-insensitive).
    pub fn parse(text: &str) -> Option<Category> {
        let text = text.trim().to_lowercase();
        Self::ALL
            .into_iter()
            .find(|c| c.label().to_lowercase() == text || c.slug() == text)
    }
}

/// One row of the treatment-category table; the first matching row wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryRule {
    /// Fee schedule the row applies to, or every one.
    pub catalogue: CataloguePattern,
    /// Codes the row matches.
    pub pattern: CodePattern,
    /// Where matching lines are counted.
    pub category: Category,
}

/// How a billing line of an entry type counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Counting {
    /// In the revenue total and its category.
    Revenue,
    /// In `umsatz_separat`, not in the total.
    Separate,
    /// Not counted at all.
    Ignored,
}

impl Counting {
    /// All countings, in table order.
    pub const ALL: [Counting; 3] = [Counting::Revenue, Counting::Separate, Counting::Ignored];

    /// German label used in the CSV table.
    pub fn label(self) -> &'static str {
        match self {
            Counting::Revenue => "Umsatz",
            Counting::Separate => "separat",
            Counting::Ignored => "ignorieren",
        }
    }

    /// The counting with this label (case-insensitive).
    pub fn from_label(label: &str) -> Option<Counting> {
        Self::ALL
            .into_iter()
            .find(|c| c.label().eq_ignore_ascii_case(label.trim()))
    }
}

/// One row of the entry-type table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryTypeRule {
    /// Ivoris entry type (`lst`, `mat`, …), matched case-insensitively.
    pub entry_type: String,
    /// How its lines count.
    pub counting: Counting,
    /// A fixed category for every line of this type (material and lab are
    /// pass-through costs whatever their code); `None` uses the category
    /// table.
    pub category: Option<Category>,
}

/// A patient field that may be sent to HubSpot. Insurance, tooth, free text
/// and billing codes are deliberately not representable (DESIGN.md §3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatientField {
    Firstname,
    Lastname,
    Email,
    Phone,
    Mobile,
    Street,
    Zip,
    City,
    Birthday,
}

impl PatientField {
    /// All fields that can be allow-listed.
    pub const ALL: [PatientField; 9] = [
        PatientField::Firstname,
        PatientField::Lastname,
        PatientField::Email,
        PatientField::Phone,
        PatientField::Mobile,
        PatientField::Street,
        PatientField::Zip,
        PatientField::City,
        PatientField::Birthday,
    ];

    /// Identifier used in the CSV table.
    pub fn key(self) -> &'static str {
        match self {
            PatientField::Firstname => "firstname",
            PatientField::Lastname => "lastname",
            PatientField::Email => "email",
            PatientField::Phone => "phone",
            PatientField::Mobile => "mobile",
            PatientField::Street => "street",
            PatientField::Zip => "zip",
            PatientField::City => "city",
            PatientField::Birthday => "birthday",
        }
    }

    /// The field with this identifier (case-insensitive).
    pub fn from_key(key: &str) -> Option<PatientField> {
        Self::ALL
            .into_iter()
            .find(|f| f.key().eq_ignore_ascii_case(key.trim()))
    }
}

/// One row of the contact field allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldRule {
    /// The patient field.
    pub field: PatientField,
    /// The HubSpot contact property it is written to.
    pub property: String,
    /// Personal data: masked in logs and previews.
    pub personal: bool,
    /// Only enabled rows reach HubSpot; street and birthday ship disabled
    /// (health-data minimisation).
    pub enabled: bool,
}

/// One row of the location table: the business side of a location. The
/// row's key references the Ivoris connection of the same key in the
/// settings (`[[location]]`: address, user; credentials in the OS store),
/// which stays there because it needs secrets. Name and brand given here
/// are what staff see; left empty, the settings' name is shown.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LocationRule {
    /// Location key as in the settings (`magdeburg`); also the reference
    /// to the location's Ivoris connection.
    pub key: String,
    /// Name shown to staff; `None` keeps the settings' name.
    #[serde(default)]
    pub name: Option<String>,
    /// Brand the practice operates under; `None` keeps the settings' brand.
    #[serde(default)]
    pub brand: Option<String>,
    /// Label of the HubSpot deal pipeline this location's cases go to;
    /// `None` uses the pipeline of the settings.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// HubSpot owner id given to every deal of the location
    /// (`hubspot_owner_id`); `None` leaves the owner to HubSpot.
    pub owner_id: Option<String>,
}

/// Default `won_after_days` when the stage table does not say.
pub const DEFAULT_WON_AFTER_DAYS: u32 = 60;

/// All mapping tables of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// Appointment type label → kind.
    pub appointment_types: Vec<AppointmentTypeRule>,
    /// Raw Ivoris state → normalised state.
    pub appointment_states: Vec<StateRule>,
    /// Logical stage → HubSpot label.
    pub stages: Vec<StageRule>,
    /// Days without activity after which a case in treatment is won.
    pub won_after_days: u32,
    /// Code patterns → category, first match wins.
    pub categories: Vec<CategoryRule>,
    /// Entry type → how it counts.
    pub entry_types: Vec<EntryTypeRule>,
    /// Patient field → HubSpot contact property.
    pub contact_fields: Vec<FieldRule>,
    /// Location key → name, brand, pipeline, deal owner; versions saved
    /// before the table existed read as empty.
    #[serde(default)]
    pub locations: Vec<LocationRule>,
}

/// Kind given to appointment types missing from the table: treating an
/// unknown type as treatment keeps the case open instead of closing or
/// ignoring it, and it is reported as unmapped so staff add the row.
pub const UNMAPPED_TYPE_KIND: AppointmentKind = AppointmentKind::Treatment;

impl Mapping {
    /// Contact properties a sync may have filled under `earlier` mappings
    /// (and the shipped defaults) that no enabled row of `self` fills:
    /// these are sent empty, so a field switched off is cleared in HubSpot
    /// instead of keeping its last value. A property this app never sent
    /// (street and birthday ship disabled) is not touched, so values staff
    /// or a previous integration put there stay.
    pub fn cleared_contact_properties<'a>(
        &self,
        earlier: impl IntoIterator<Item = &'a Mapping>,
    ) -> BTreeSet<String> {
        let now = self.enabled_contact_properties();
        let mut sent = Mapping::defaults().enabled_contact_properties();
        sent.extend(
            earlier
                .into_iter()
                .flat_map(Mapping::enabled_contact_properties),
        );
        sent.retain(|property| !now.contains(property));
        sent
    }

    /// The contact properties an enabled row of „Kontaktfelder“ fills.
    pub fn enabled_contact_properties(&self) -> BTreeSet<String> {
        self.contact_fields
            .iter()
            .filter(|rule| rule.enabled)
            .map(|rule| rule.property.clone())
            .collect()
    }

    /// A mapping without rows (the start of reading tables).
    pub fn empty() -> Mapping {
        Mapping {
            appointment_types: Vec::new(),
            appointment_states: Vec::new(),
            stages: Vec::new(),
            won_after_days: DEFAULT_WON_AFTER_DAYS,
            categories: Vec::new(),
            entry_types: Vec::new(),
            contact_fields: Vec::new(),
            locations: Vec::new(),
        }
    }

    /// Removes every row of one table (the stage table also resets the
    /// days without activity, which it carries).
    pub fn clear(&mut self, table: TableName) {
        match table {
            TableName::AppointmentTypes => self.appointment_types.clear(),
            TableName::AppointmentStates => self.appointment_states.clear(),
            TableName::Stages => {
                self.stages.clear();
                self.won_after_days = DEFAULT_WON_AFTER_DAYS;
            }
            TableName::TreatmentCategories => self.categories.clear(),
            TableName::EntryTypes => self.entry_types.clear(),
            TableName::ContactFields => self.contact_fields.clear(),
            TableName::Locations => self.locations.clear(),
        }
    }

    /// Rows in one table.
    pub fn row_count(&self, table: TableName) -> usize {
        match table {
            TableName::AppointmentTypes => self.appointment_types.len(),
            TableName::AppointmentStates => self.appointment_states.len(),
            TableName::Stages => self.stages.len(),
            TableName::TreatmentCategories => self.categories.len(),
            TableName::EntryTypes => self.entry_types.len(),
            TableName::ContactFields => self.contact_fields.len(),
            TableName::Locations => self.locations.len(),
        }
    }

    /// The shipped defaults from `assets/mapping/`. Rows that fail to parse
    /// are left out; the tests make sure there are none.
    pub fn defaults() -> Mapping {
        table::CsvTables::defaults().parse().mapping
    }

    /// How an appointment type is treated: the row with its template Id,
    /// else the row with its label. Unknown types get
    /// [`UNMAPPED_TYPE_KIND`], open cases and are marked unmapped.
    pub fn appointment_type(&self, label: Option<&str>, template_id: Option<&str>) -> ResolvedType {
        let by_template = template_id.and_then(|id| {
            self.appointment_types
                .iter()
                .find(|rule| rule.template_id.as_deref().map(str::trim) == Some(id.trim()))
        });
        let found = by_template.or_else(|| {
            // Compared without allocating: this runs for every appointment
            // of every case each time a location is planned.
            let label = label?.trim();
            self.appointment_types
                .iter()
                .find(|rule| pattern::eq_fold(rule.label.trim(), label))
        });
        match found {
            Some(rule) => ResolvedType {
                kind: rule.kind,
                opens_case: rule.opens_case,
                mapped: true,
            },
            None => ResolvedType {
                kind: UNMAPPED_TYPE_KIND,
                opens_case: true,
                mapped: false,
            },
        }
    }

    /// The normalised state of a raw Ivoris value; `None` when unmapped (the
    /// caller warns, never guesses).
    pub fn appointment_state(&self, raw: &str) -> Option<AppointmentState> {
        let raw = raw.trim();
        self.appointment_states
            .iter()
            .find(|rule| rule.ivoris_value.trim().eq_ignore_ascii_case(raw))
            .map(|rule| rule.state)
    }

    /// The HubSpot label of a logical stage.
    pub fn stage_label(&self, stage: Stage) -> Option<&str> {
        self.stages
            .iter()
            .find(|rule| rule.stage == stage)
            .map(|rule| rule.label.as_str())
    }

    /// The category of a billing code: first matching row, else
    /// „unklassifiziert“ (never guessed from text).
    pub fn category(&self, catalogue: Option<&str>, code: Option<&str>) -> Category {
        let Some(code) = code else {
            return Category::Unklassifiziert;
        };
        self.categories
            .iter()
            .find(|rule| rule.catalogue.matches(catalogue) && rule.pattern.matches(code))
            .map_or(Category::Unklassifiziert, |rule| rule.category)
    }

    /// The row of a location, if the table has one.
    pub fn location(&self, location: &str) -> Option<&LocationRule> {
        self.locations
            .iter()
            .find(|rule| rule.key.trim() == location)
    }

    /// The HubSpot owner of a location's deals, if the table names one.
    pub fn deal_owner(&self, location: &str) -> Option<&str> {
        filled(self.location(location)?.owner_id.as_deref())
    }

    /// The HubSpot pipeline label of a location's deals, if the table names
    /// one (else the settings' pipeline applies).
    pub fn location_pipeline(&self, location: &str) -> Option<&str> {
        filled(self.location(location)?.pipeline.as_deref())
    }

    /// The name staff see for a location, if the table names one.
    pub fn location_name(&self, location: &str) -> Option<&str> {
        filled(self.location(location)?.name.as_deref())
    }

    /// The brand of a location, if the table names one.
    pub fn location_brand(&self, location: &str) -> Option<&str> {
        filled(self.location(location)?.brand.as_deref())
    }

    /// The entry-type row of an Ivoris entry type, if any.
    pub fn entry_type(&self, entry_type: &str) -> Option<&EntryTypeRule> {
        let entry_type = entry_type.trim();
        self.entry_types
            .iter()
            .find(|rule| rule.entry_type.trim().eq_ignore_ascii_case(entry_type))
    }

    /// Checks every table; an empty list means the mapping is usable. Rows
    /// are numbered as CSV lines (header = 1, first row = 2).
    pub fn validate(&self) -> Vec<Problem> {
        validate::validate(self, &RowLines::default())
    }
}

/// A trimmed cell that says something.
fn filled(cell: Option<&str>) -> Option<&str> {
    cell.map(str::trim).filter(|text| !text.is_empty())
}
