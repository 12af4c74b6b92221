//! The vocabulary of the simulated portal: object types and their aliases,
//! property definitions with HubSpot's seeded defaults, and the deal
//! pipelines. Pure data; the store and the routes build on it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The CRM object types the sandbox serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    Contacts,
    Deals,
    Appointments,
}

impl ObjectType {
    pub const ALL: [ObjectType; 3] = [
        ObjectType::Contacts,
        ObjectType::Deals,
        ObjectType::Appointments,
    ];

    /// Accepts the name and the numeric type id, as HubSpot does in every path.
    pub fn parse(raw: &str) -> Option<ObjectType> {
        match raw.to_ascii_lowercase().as_str() {
            "contacts" | "contact" | "0-1" => Some(ObjectType::Contacts),
            "deals" | "deal" | "0-3" => Some(ObjectType::Deals),
            "appointments" | "appointment" | "0-421" => Some(ObjectType::Appointments),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contacts",
            ObjectType::Deals => "deals",
            ObjectType::Appointments => "appointments",
        }
    }

    pub fn type_id(self) -> &'static str {
        match self {
            ObjectType::Contacts => "0-1",
            ObjectType::Deals => "0-3",
            ObjectType::Appointments => "0-421",
        }
    }

    /// Index into per-type arrays.
    pub fn index(self) -> usize {
        match self {
            ObjectType::Contacts => 0,
            ObjectType::Deals => 1,
            ObjectType::Appointments => 2,
        }
    }

    /// Used in messages such as "Contact already exists".
    pub fn singular(self) -> &'static str {
        match self {
            ObjectType::Contacts => "Contact",
            ObjectType::Deals => "Deal",
            ObjectType::Appointments => "Appointment",
        }
    }

    /// HubSpot's upper-case object name in batch read errors ("Could not get some CONTACT objects").
    pub fn upper(self) -> &'static str {
        match self {
            ObjectType::Contacts => "CONTACT",
            ObjectType::Deals => "DEAL",
            ObjectType::Appointments => "APPOINTMENT",
        }
    }

    /// Name of the scope family (`crm.objects.<family>.read|write`).
    pub fn scope_family(self) -> &'static str {
        self.name()
    }

    /// The system property holding the creation time.
    pub fn created_property(self) -> &'static str {
        match self {
            ObjectType::Appointments => "hs_createdate",
            _ => "createdate",
        }
    }

    /// The system property reads show as the last modification time;
    /// contacts use the old name, the other objects the `hs_` one.
    pub fn modified_property(self) -> &'static str {
        match self {
            ObjectType::Contacts => "lastmodifieddate",
            _ => "hs_lastmodifieddate",
        }
    }

    /// Every property stamped on a write: contacts carry both names.
    pub fn modified_properties(self) -> &'static [&'static str] {
        match self {
            ObjectType::Contacts => &["lastmodifieddate", "hs_lastmodifieddate"],
            _ => &["hs_lastmodifieddate"],
        }
    }

    /// Properties returned when a read names none (HubSpot's defaults).
    pub fn default_read_properties(self) -> &'static [&'static str] {
        match self {
            ObjectType::Contacts => &[
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname",
            ],
            ObjectType::Deals => &[
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "hs_object_id",
                "pipeline",
            ],
            ObjectType::Appointments => &[
                "hs_appointment_name",
                "hs_appointment_start",
                "hs_createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
            ],
        }
    }
}

/// Association type ids between two object types, `(from→to, to→from)`.
/// Contact/deal ids are HubSpot's published ones; appointment ids are not
/// published, so the sandbox picks fixed values in HubSpot's range.
pub fn association_type_id(from: ObjectType, to: ObjectType) -> Option<u32> {
    use ObjectType::*;
    match (from, to) {
        (Deals, Contacts) => Some(3),
        (Contacts, Deals) => Some(4),
        (Contacts, Appointments) => Some(906),
        (Appointments, Contacts) => Some(907),
        (Deals, Appointments) => Some(945),
        (Appointments, Deals) => Some(946),
        _ => None,
    }
}

/// One option of an enumeration property (HubSpot's `Option` model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyOption {
    /// Text the practice sees.
    pub label: String,
    /// Stored value, the one writes must use.
    pub value: String,
    /// Position in pickers.
    #[serde(default)]
    pub display_order: i64,
    /// Hidden options stay valid but are not offered.
    #[serde(default)]
    pub hidden: bool,
    /// Optional help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A property definition as the properties API shows it. The fields mirror
/// HubSpot's `Property` model, including those its Python SDK requires.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDef {
    /// Internal name used in record bodies.
    pub name: String,
    /// Name shown in HubSpot.
    pub label: String,
    /// Value type (`string`, `number`, `date`, …): decides validation and search comparison.
    #[serde(rename = "type")]
    pub kind: String,
    /// Form control; must fit `kind`.
    pub field_type: String,
    /// The property group it is listed under.
    pub group_name: String,
    /// The Python SDK requires the field, HubSpot sends "" when unset.
    pub description: String,
    /// Allowed values of enumerations (empty: any value).
    pub options: Vec<PropertyOption>,
    /// Position in HubSpot's UI.
    pub display_order: i64,
    /// Values are unique per object type; enforced on every write.
    pub has_unique_value: bool,
    /// Hidden from HubSpot's UI.
    pub hidden: bool,
    /// Usable in forms.
    pub form_field: bool,
    /// Computed by HubSpot, never written.
    pub calculated: bool,
    /// Options come from elsewhere (pipelines, owners), so they are not checked here.
    pub external_options: bool,
    /// Seeded by HubSpot rather than created through the API.
    pub hubspot_defined: bool,
    /// Archived definitions are only listed with `archived=true`.
    pub archived: bool,
    /// Creation time (HubSpot timestamp format).
    pub created_at: String,
    /// Last change of the definition.
    pub updated_at: String,
    /// Whether definition and values may change.
    pub modification_metadata: ModificationMetadata,
}

/// Whether a property's definition and values may be changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModificationMetadata {
    /// The property may be archived.
    pub archivable: bool,
    /// The definition cannot be edited (seeded properties).
    pub read_only_definition: bool,
    /// Values cannot be written (system properties): writes get `READ_ONLY_VALUE`.
    pub read_only_value: bool,
}

impl PropertyDef {
    pub fn is_read_only(&self) -> bool {
        self.modification_metadata.read_only_value
    }

    /// Whether values compare as numbers in search.
    pub fn is_numeric(&self) -> bool {
        matches!(self.kind.as_str(), "number" | "date" | "datetime")
    }
}

/// A property group as the properties API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyGroup {
    /// Internal name properties refer to in `groupName`.
    pub name: String,
    /// Name shown in HubSpot.
    pub label: String,
    /// Position in HubSpot's UI.
    pub display_order: i64,
    /// Archived groups are kept for old references.
    pub archived: bool,
}

/// Types and field types the properties API accepts on create.
pub const PROPERTY_TYPES: &[&str] = &[
    "string",
    "number",
    "date",
    "datetime",
    "enumeration",
    "bool",
    "phone_number",
];
pub const FIELD_TYPES: &[&str] = &[
    "textarea",
    "text",
    "date",
    "file",
    "number",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "calculation_equation",
    "phonenumber",
    "html",
];

/// Which field types fit which property type (HubSpot refuses e.g. a
/// `number` shown as a `select`).
pub fn field_type_fits(kind: &str, field_type: &str) -> bool {
    match kind {
        "string" => matches!(field_type, "text" | "textarea" | "file" | "html"),
        "number" => matches!(field_type, "number" | "calculation_equation"),
        "date" | "datetime" => field_type == "date",
        "enumeration" => matches!(
            field_type,
            "select" | "radio" | "checkbox" | "booleancheckbox"
        ),
        "bool" => matches!(field_type, "booleancheckbox" | "select" | "radio"),
        "phone_number" => matches!(field_type, "phonenumber" | "text"),
        _ => false,
    }
}

/// The timestamp seeded definitions carry.
pub const SEED_TIME: &str = "2019-08-06T02:43:14.491Z";

/// A compact description of a seeded property (see `PropertyDef`).
struct Seed {
    /// Internal name.
    name: &'static str,
    /// Shown name.
    label: &'static str,
    /// Value type.
    kind: &'static str,
    /// Form control.
    field_type: &'static str,
    /// Property group.
    group: &'static str,
    /// System property that writes may not set.
    read_only: bool,
    /// `(value, label)` of enumeration options.
    options: &'static [(&'static str, &'static str)],
}

const fn p(
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    field_type: &'static str,
    group: &'static str,
) -> Seed {
    Seed {
        name,
        label,
        kind,
        field_type,
        group,
        read_only: false,
        options: &[],
    }
}

const fn ro(mut seed: Seed) -> Seed {
    seed.read_only = true;
    seed
}

const fn opts(mut seed: Seed, options: &'static [(&'static str, &'static str)]) -> Seed {
    seed.options = options;
    seed
}

const CONTACT_SEEDS: &[Seed] = &[
    ro(p(
        "hs_object_id",
        "Record ID",
        "number",
        "number",
        "contactinformation",
    )),
    ro(p(
        "createdate",
        "Create Date",
        "datetime",
        "date",
        "contactinformation",
    )),
    ro(p(
        "lastmodifieddate",
        "Last Modified Date",
        "datetime",
        "date",
        "contactinformation",
    )),
    ro(p(
        "hs_lastmodifieddate",
        "Object last modified date/time",
        "datetime",
        "date",
        "contactinformation",
    )),
    ro(p(
        "hs_merged_object_ids",
        "Merged Record IDs",
        "enumeration",
        "checkbox",
        "contactinformation",
    )),
    p("email", "Email", "string", "text", "contactinformation"),
    p(
        "firstname",
        "First Name",
        "string",
        "text",
        "contactinformation",
    ),
    p(
        "lastname",
        "Last Name",
        "string",
        "text",
        "contactinformation",
    ),
    p(
        "salutation",
        "Salutation",
        "string",
        "text",
        "contactinformation",
    ),
    p(
        "phone",
        "Phone Number",
        "string",
        "text",
        "contactinformation",
    ),
    p(
        "mobilephone",
        "Mobile Phone Number",
        "string",
        "text",
        "contactinformation",
    ),
    p(
        "address",
        "Street Address",
        "string",
        "text",
        "contactinformation",
    ),
    p("city", "City", "string", "text", "contactinformation"),
    p("zip", "Postal Code", "string", "text", "contactinformation"),
    p(
        "country",
        "Country/Region",
        "string",
        "text",
        "contactinformation",
    ),
    p(
        "date_of_birth",
        "Date of birth",
        "string",
        "text",
        "contactinformation",
    ),
    p(
        "hubspot_owner_id",
        "Contact owner",
        "enumeration",
        "select",
        "contactinformation",
    ),
    opts(
        p(
            "lifecyclestage",
            "Lifecycle Stage",
            "enumeration",
            "radio",
            "contactinformation",
        ),
        &[
            ("subscriber", "Subscriber"),
            ("lead", "Lead"),
            ("marketingqualifiedlead", "Marketing Qualified Lead"),
            ("salesqualifiedlead", "Sales Qualified Lead"),
            ("opportunity", "Opportunity"),
            ("customer", "Customer"),
            ("evangelist", "Evangelist"),
            ("other", "Other"),
        ],
    ),
];

const DEAL_SEEDS: &[Seed] = &[
    ro(p(
        "hs_object_id",
        "Record ID",
        "number",
        "number",
        "dealinformation",
    )),
    ro(p(
        "createdate",
        "Create Date",
        "datetime",
        "date",
        "dealinformation",
    )),
    ro(p(
        "hs_lastmodifieddate",
        "Last Modified Date",
        "datetime",
        "date",
        "dealinformation",
    )),
    ro(p(
        "hs_merged_object_ids",
        "Merged Record IDs",
        "enumeration",
        "checkbox",
        "dealinformation",
    )),
    p("dealname", "Deal Name", "string", "text", "dealinformation"),
    p("amount", "Amount", "number", "number", "dealinformation"),
    p(
        "pipeline",
        "Pipeline",
        "enumeration",
        "select",
        "dealinformation",
    ),
    p(
        "dealstage",
        "Deal Stage",
        "enumeration",
        "radio",
        "dealinformation",
    ),
    p(
        "closedate",
        "Close Date",
        "datetime",
        "date",
        "dealinformation",
    ),
    p(
        "hubspot_owner_id",
        "Deal owner",
        "enumeration",
        "select",
        "dealinformation",
    ),
    p(
        "description",
        "Deal Description",
        "string",
        "textarea",
        "dealinformation",
    ),
    opts(
        p(
            "dealtype",
            "Deal Type",
            "enumeration",
            "radio",
            "dealinformation",
        ),
        &[
            ("newbusiness", "New Business"),
            ("existingbusiness", "Existing Business"),
        ],
    ),
];

const APPOINTMENT_SEEDS: &[Seed] = &[
    ro(p(
        "hs_object_id",
        "Record ID",
        "number",
        "number",
        "appointment_information",
    )),
    ro(p(
        "hs_createdate",
        "Create Date",
        "datetime",
        "date",
        "appointment_information",
    )),
    ro(p(
        "hs_lastmodifieddate",
        "Last Modified Date",
        "datetime",
        "date",
        "appointment_information",
    )),
    ro(p(
        "hs_merged_object_ids",
        "Merged Record IDs",
        "enumeration",
        "checkbox",
        "appointment_information",
    )),
    p(
        "hs_appointment_name",
        "Appointment Name",
        "string",
        "text",
        "appointment_information",
    ),
    p(
        "hs_appointment_start",
        "Appointment Start",
        "datetime",
        "date",
        "appointment_information",
    ),
    p(
        "hs_appointment_end",
        "Appointment End",
        "datetime",
        "date",
        "appointment_information",
    ),
    opts(
        p(
            "hs_appointment_status",
            "Appointment Status",
            "enumeration",
            "select",
            "appointment_information",
        ),
        &[
            ("SCHEDULED", "Scheduled"),
            ("COMPLETED", "Completed"),
            ("CANCELED", "Canceled"),
            ("NO_SHOW", "No show"),
            ("RESCHEDULED", "Rescheduled"),
        ],
    ),
    p(
        "hs_appointment_type",
        "Appointment Type",
        "string",
        "text",
        "appointment_information",
    ),
    p(
        "hubspot_owner_id",
        "Appointment owner",
        "enumeration",
        "select",
        "appointment_information",
    ),
];

/// The property groups seeded per type.
pub fn seeded_groups(object_type: ObjectType) -> Vec<PropertyGroup> {
    let (name, label) = match object_type {
        ObjectType::Contacts => ("contactinformation", "Contact information"),
        ObjectType::Deals => ("dealinformation", "Deal information"),
        ObjectType::Appointments => ("appointment_information", "Appointment information"),
    };
    vec![PropertyGroup {
        name: name.to_string(),
        label: label.to_string(),
        display_order: -1,
        archived: false,
    }]
}

/// The property definitions seeded per type.
pub fn seeded_properties(object_type: ObjectType) -> Vec<PropertyDef> {
    let seeds = match object_type {
        ObjectType::Contacts => CONTACT_SEEDS,
        ObjectType::Deals => DEAL_SEEDS,
        ObjectType::Appointments => APPOINTMENT_SEEDS,
    };
    seeds
        .iter()
        .enumerate()
        .map(|(order, seed)| PropertyDef {
            name: seed.name.to_string(),
            label: seed.label.to_string(),
            kind: seed.kind.to_string(),
            field_type: seed.field_type.to_string(),
            group_name: seed.group.to_string(),
            description: String::new(),
            options: seed
                .options
                .iter()
                .enumerate()
                .map(|(i, (value, label))| PropertyOption {
                    label: (*label).to_string(),
                    value: (*value).to_string(),
                    display_order: i as i64,
                    hidden: false,
                    description: None,
                })
                .collect(),
            display_order: order as i64,
            has_unique_value: false,
            hidden: false,
            form_field: !seed.read_only,
            calculated: false,
            external_options: matches!(seed.name, "pipeline" | "dealstage" | "hubspot_owner_id"),
            hubspot_defined: true,
            archived: false,
            created_at: SEED_TIME.to_string(),
            updated_at: SEED_TIME.to_string(),
            modification_metadata: ModificationMetadata {
                archivable: !seed.read_only,
                read_only_definition: true,
                read_only_value: seed.read_only,
            },
        })
        .collect()
}

/// A deal pipeline stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Value of a deal's `dealstage`.
    pub id: String,
    /// Unique within the pipeline; the sync resolves ids from labels.
    pub label: String,
    /// Win probability, a string on the wire.
    pub probability: &'static str,
    /// Closed stages end a deal (won or lost).
    pub closed: bool,
}

/// A deal pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Value of a deal's `pipeline`.
    pub id: String,
    /// Name shown in HubSpot.
    pub label: String,
    /// Stages in display order.
    pub stages: Vec<Stage>,
}

fn stage(id: &str, label: &str, probability: &'static str, closed: bool) -> Stage {
    Stage {
        id: id.to_string(),
        label: label.to_string(),
        probability,
        closed,
    }
}

/// HubSpot's default sales pipeline and the practice's „Patientenreise“.
pub fn seeded_pipelines() -> Vec<Pipeline> {
    vec![
        Pipeline {
            id: "default".to_string(),
            label: "Sales Pipeline".to_string(),
            stages: vec![
                stage(
                    "appointmentscheduled",
                    "Appointment Scheduled",
                    "0.2",
                    false,
                ),
                stage("qualifiedtobuy", "Qualified To Buy", "0.4", false),
                stage(
                    "presentationscheduled",
                    "Presentation Scheduled",
                    "0.6",
                    false,
                ),
                stage(
                    "decisionmakerboughtin",
                    "Decision Maker Bought-In",
                    "0.8",
                    false,
                ),
                stage("contractsent", "Contract Sent", "0.9", false),
                stage("closedwon", "Closed Won", "1.0", true),
                stage("closedlost", "Closed Lost", "0.0", true),
            ],
        },
        Pipeline {
            id: "75835201".to_string(),
            label: "Patientenreise".to_string(),
            stages: vec![
                stage("160391237", "Termin gebucht", "0.2", false),
                stage("160391238", "Erstberatung", "0.4", false),
                stage("160391239", "In Behandlung", "0.7", false),
                stage("160391240", "Behandlung abgeschlossen", "1.0", true),
                stage("160391241", "Verloren", "0.0", true),
            ],
        },
    ]
}

/// The wire form of a pipeline (`Pipeline` model of the SDK).
pub fn pipeline_json(pipeline: &Pipeline) -> Value {
    let stages: Vec<Value> = pipeline
        .stages
        .iter()
        .enumerate()
        .map(|(order, stage)| {
            json!({
                "id": stage.id,
                "label": stage.label,
                "displayOrder": order,
                "metadata": {
                    "probability": stage.probability,
                    "isClosed": if stage.closed { "true" } else { "false" },
                },
                "archived": false,
                "createdAt": SEED_TIME,
                "updatedAt": SEED_TIME,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
            })
        })
        .collect();
    json!({
        "id": pipeline.id,
        "label": pipeline.label,
        "displayOrder": if pipeline.id == "default" { 0 } else { 1 },
        "archived": false,
        "createdAt": SEED_TIME,
        "updatedAt": SEED_TIME,
        "stages": stages,
    })
}
