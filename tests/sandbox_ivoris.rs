//! The simulated Ivoris service and its synthetic practices, tested through
//! HTTP on 127.0.0.1 against expectations computed from the raw world.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use ivoris_hubspot_sync::ivoris::wire::{Appointment, DocumentEntry, Patient};
use ivoris_hubspot_sync::sandbox::data::{Location, World};
use ivoris_hubspot_sync::sandbox::ivoris::{self, FaultUpdate, IvorisSim, RecordKind};
use ivoris_hubspot_sync::sandbox::{FaultProfile, SandboxLocation, Size, credentials};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Harness {
    sim: Arc<IvorisSim>,
    root: String,
    locations: Vec<SandboxLocation>,
    client: reqwest::Client,
}

async fn start_with(seed: u64, size: Size, faults: FaultProfile) -> Harness {
    let world = World::generate(seed, size);
    let sim = Arc::new(IvorisSim::new(world, faults, seed));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    let app = ivoris::router(sim.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let locations = sim.locations(&root);
    Harness {
        sim,
        root,
        locations,
        client: reqwest::Client::new(),
    }
}

async fn start() -> Harness {
    start_with(7, Size::Small, FaultProfile::None).await
}

impl Harness {
    fn location(&self, index: usize) -> &SandboxLocation {
        &self.locations[index]
    }

    fn world_location(&self, index: usize) -> Location {
        self.sim.with_world(|w| w.locations[index].clone())
    }

    fn request(
        &self,
        index: usize,
        path: &str,
        params: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.location(index).ivoris_url, path);
        self.client
            .get(url)
            .basic_auth(credentials::IVORIS_USER, Some(credentials::IVORIS_PASSWORD))
            .query(&[
                ("app", credentials::IVORIS_APP),
                ("app_version", credentials::IVORIS_APP_VERSION),
                ("api_key", credentials::IVORIS_API_KEY),
            ])
            .query(params)
    }

    async fn get(&self, index: usize, path: &str, params: &[(&str, &str)]) -> (StatusCode, String) {
        let response = self.request(index, path, params).send().await.unwrap();
        let status = response.status();
        (status, response.text().await.unwrap())
    }

    async fn json(&self, index: usize, path: &str, params: &[(&str, &str)]) -> Value {
        let (status, body) = self.get(index, path, params).await;
        assert_eq!(status, StatusCode::OK, "{path} {params:?}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn ids(&self, index: usize, path: &str, params: &[(&str, &str)]) -> Vec<String> {
        let value = self.json(index, path, params).await;
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["Id"].as_str().unwrap_or("<no id>").to_string())
            .collect()
    }

    async fn sandbox(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.client.request(method, format!("{}{path}", self.root));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }

    fn faults(&self, update: FaultUpdate) {
        self.sim.update_faults(&update);
    }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn end_of(appointment: &Appointment) -> NaiveDateTime {
    appointment.start.unwrap()
        + chrono::Duration::minutes(i64::from(appointment.duration_minutes.unwrap()))
}

// ---------------------------------------------------------------- the world

#[test]
fn same_seed_same_world_other_seed_other_world() {
    let a = serde_json::to_string(&World::generate(11, Size::Small)).unwrap();
    let b = serde_json::to_string(&World::generate(11, Size::Small)).unwrap();
    let c = serde_json::to_string(&World::generate(12, Size::Small)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

fn check_size(
    size: Size,
    patients: (usize, usize),
    appointments_per_patient: (f64, f64),
    entries_per_patient: (f64, f64),
) {
    let world = World::generate(3, size);
    assert!(world.locations.len() >= 3);
    for location in &world.locations {
        let n = location.patients.len();
        assert!(
            n >= patients.0 && n <= patients.1,
            "{} patients {n}",
            location.key
        );
        let per_patient = location.appointments.len() as f64 / n as f64;
        assert!(
            per_patient >= appointments_per_patient.0 && per_patient <= appointments_per_patient.1,
            "{} appointments per patient {per_patient}",
            location.key
        );
        let entries = location.entries.len() as f64 / n as f64;
        assert!(
            entries >= entries_per_patient.0 && entries <= entries_per_patient.1,
            "{} entries per patient {entries}",
            location.key
        );
    }
}

#[test]
fn sizes_meet_their_targets() {
    check_size(Size::Small, (38, 60), (2.5, 7.0), (6.0, 25.0));
    check_size(Size::Medium, (1_950, 2_150), (3.0, 5.5), (10.0, 20.0));
}

/// The demo-sized world, generated once for all realism checks.
fn medium() -> &'static World {
    static MEDIUM: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    MEDIUM.get_or_init(|| World::generate(5, Size::Medium))
}

#[test]
fn names_are_german_with_umlauts_and_sharp_s() {
    let world = medium();
    let names: Vec<String> = world.locations[0]
        .patients
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.firstname.as_deref().unwrap(),
                p.lastname.as_deref().unwrap()
            )
        })
        .collect();
    for needle in ["ü", "ö", "ä", "ß", "Ç"] {
        assert!(
            names.iter().any(|n| n.contains(needle)),
            "no name with {needle}"
        );
    }
    for patient in &world.locations[0].patients {
        let zip = patient
            .address
            .as_ref()
            .and_then(|a| a.zip.as_deref())
            .unwrap();
        assert!(
            zip.len() == 5 && zip.chars().all(|c| c.is_ascii_digit()),
            "{zip}"
        );
        if let Some(email) = &patient.email {
            let domain = email.rsplit('@').next().unwrap();
            assert!(
                ["example.de", "example.com", "example.org"].contains(&domain),
                "{email}"
            );
            assert!(email.is_ascii(), "{email}");
        }
        let birthday = patient.birthday.unwrap().date();
        assert!(
            birthday > NaiveDate::from_ymd_opt(1930, 1, 1).unwrap() && birthday < world.now.date()
        );
    }
}

#[test]
fn some_patients_lack_an_email_and_families_share_one() {
    for location in &medium().locations {
        let without = location
            .patients
            .iter()
            .filter(|p| p.email.is_none())
            .count();
        let share = without as f64 / location.patients.len() as f64;
        assert!(
            (0.08..=0.25).contains(&share),
            "{} without e-mail {share}",
            location.key
        );
        let mut by_email: HashMap<&str, HashSet<&str>> = HashMap::new();
        for patient in &location.patients {
            if let Some(email) = &patient.email {
                by_email
                    .entry(email)
                    .or_default()
                    .insert(patient.firstname.as_deref().unwrap());
            }
        }
        let families = by_email.values().filter(|names| names.len() >= 2).count();
        assert!(families >= 10, "{} families {families}", location.key);
    }
}

type PersonKey = (String, String, NaiveDateTime);

fn person_key(patient: &Patient) -> PersonKey {
    (
        patient.firstname.clone().unwrap(),
        patient.lastname.clone().unwrap(),
        patient.birthday.unwrap(),
    )
}

#[test]
fn some_people_are_patients_at_two_locations_and_some_are_entered_twice() {
    for world in [&World::generate(5, Size::Small), medium()] {
        let keys: Vec<HashMap<PersonKey, Vec<&Patient>>> = world
            .locations
            .iter()
            .map(|l| {
                let mut map: HashMap<PersonKey, Vec<&Patient>> = HashMap::new();
                for patient in &l.patients {
                    map.entry(person_key(patient)).or_default().push(patient);
                }
                map
            })
            .collect();
        let cross = keys[1]
            .iter()
            .filter(|(key, patients)| {
                keys[2].get(*key).is_some_and(|other| {
                    other.iter().any(|o| {
                        patients
                            .iter()
                            .any(|p| o.id != p.id && o.email == p.email && p.email.is_some())
                    })
                })
            })
            .count();
        assert!(
            cross >= 1,
            "no person at both practices of the second brand"
        );
        for (location, map) in world.locations.iter().zip(&keys) {
            let twice = map.values().filter(|patients| patients.len() >= 2).count();
            assert!(twice >= 2, "{}: duplicates {twice}", location.key);
            let numbers: HashSet<_> = location
                .patients
                .iter()
                .map(|p| p.human_readable_id.clone())
                .collect();
            assert_eq!(
                numbers.len(),
                location.patients.len(),
                "patient numbers unique"
            );
        }
    }
}

#[test]
fn insurance_mix_has_statutory_private_and_self_pay() {
    let world = medium();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for patient in &world.locations[0].patients {
        *counts
            .entry(patient.health_insurance.as_deref().unwrap())
            .or_default() += 1;
        if patient.health_insurance.as_deref() == Some("Statutory") {
            let number = patient
                .current_insurance
                .as_ref()
                .and_then(|i| i.insurance_number.as_deref())
                .unwrap();
            assert_eq!(number.len(), 10, "{number}");
        }
    }
    let total = world.locations[0].patients.len() as f64;
    assert!(counts["Statutory"] as f64 / total > 0.75, "{counts:?}");
    assert!(counts["Private"] > 50, "{counts:?}");
    assert!(counts["SelfPay"] > 5, "{counts:?}");
}

#[test]
fn appointments_use_all_states_in_a_realistic_mix() {
    let world = medium();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    let mut past = 0usize;
    for location in &world.locations {
        for appointment in &location.appointments {
            let state = appointment.state.clone().unwrap();
            let start = appointment.start.unwrap();
            if end_of(appointment) <= world.now {
                past += 1;
                assert!(
                    ["Completed", "Cancelled", "NoShow", "Clarified"].contains(&state.as_str()),
                    "past appointment {state}"
                );
            } else if start > world.now + chrono::Duration::minutes(30) {
                assert!(
                    ["Booked", "Confirmed", "Cancelled"].contains(&state.as_str()),
                    "future {state}"
                );
            }
            assert!(appointment.last_modified.unwrap() <= world.now);
            *states.entry(state).or_default() += 1;
        }
    }
    for state in [
        "Booked",
        "Confirmed",
        "Arrived",
        "InTreatment",
        "Completed",
        "Cancelled",
        "NoShow",
        "Clarified",
    ] {
        assert!(states.contains_key(state), "{state} missing: {states:?}");
    }
    let share = |state: &str| states[state] as f64 / past as f64;
    assert!((0.05..=0.12).contains(&share("Cancelled")), "{states:?}");
    assert!((0.02..=0.07).contains(&share("NoShow")), "{states:?}");
    assert!(share("Completed") > 0.7, "{states:?}");
    let small = World::generate(5, Size::Small);
    for location in &small.locations {
        let here: HashSet<_> = location
            .appointments
            .iter()
            .filter_map(|a| a.state.as_deref())
            .collect();
        assert!(
            here.contains("InTreatment") && here.contains("Arrived"),
            "{}: {here:?}",
            location.key
        );
    }
}

#[test]
fn chairs_are_not_double_booked_and_practices_keep_opening_hours() {
    let world = medium();
    for location in &world.locations {
        let mut by_chair: HashMap<(&str, NaiveDate), Vec<(NaiveDateTime, NaiveDateTime)>> =
            HashMap::new();
        for appointment in &location.appointments {
            let start = appointment.start.unwrap();
            let weekday = chrono::Datelike::weekday(&start.date());
            assert!(
                !matches!(weekday, chrono::Weekday::Sat | chrono::Weekday::Sun),
                "{start}"
            );
            assert!(
                start.time() >= chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                "{start}"
            );
            assert!(
                end_of(appointment).time() <= chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
                "{start}"
            );
            if appointment.state.as_deref() != Some("Cancelled") {
                by_chair
                    .entry((
                        appointment.dentist_chair_id.as_deref().unwrap(),
                        start.date(),
                    ))
                    .or_default()
                    .push((start, end_of(appointment)));
            }
        }
        let mut overlaps = 0;
        for slots in by_chair.values_mut() {
            slots.sort();
            overlaps += slots.windows(2).filter(|w| w[1].0 < w[0].1).count();
        }
        assert_eq!(overlaps, 0, "{}", location.key);
    }
}

#[test]
fn templates_cover_the_appointment_types_of_practices() {
    let world = World::generate(5, Size::Small);
    let names: HashSet<_> = world.locations[0]
        .templates
        .iter()
        .filter_map(|t| t.name.clone())
        .collect();
    for name in [
        "Erstberatung",
        "Kontrolle",
        "PZR",
        "Füllungstherapie",
        "Endo",
        "PAR",
        "Chirurgie/Extraktion",
        "Implantat-Beratung",
        "Implantation",
        "ZE-Präparation",
        "ZE-Eingliederung",
        "KFO-Beratung",
        "Aligner-Scan",
        "Bleaching",
        "Schmerz/Notfall",
        "Recall",
    ] {
        assert!(names.contains(name), "{name}");
    }
    assert!(
        world.locations[1]
            .templates
            .iter()
            .any(|t| t.name.as_deref() == Some("Neupatient"))
    );
}

#[test]
fn billing_lines_follow_the_fee_schedules() {
    let world = medium();
    let location = &world.locations[0];
    let mut types: BTreeMap<&str, usize> = BTreeMap::new();
    let mut codes: HashSet<(&str, &str)> = HashSet::new();
    let billed_days: HashSet<(&str, NaiveDate)> = location
        .appointments
        .iter()
        .filter(|a| matches!(a.state.as_deref(), Some("Completed" | "NoShow")))
        .map(|a| (a.patient_id.as_deref().unwrap(), a.start.unwrap().date()))
        .collect();
    for entry in &location.entries {
        let kind = entry.entry_type.as_deref().unwrap();
        *types.entry(kind).or_default() += 1;
        let cents = entry.amount_cents().unwrap();
        if kind == "text" || kind == "note" {
            assert_eq!(cents, 0);
        } else {
            assert!(cents > 0, "{entry:?}");
        }
        if let (Some(catalogue), Some(code)) = (&entry.catalogue, &entry.code) {
            codes.insert((catalogue, code));
        }
        if entry.catalogue.as_deref() == Some("GOZ") {
            let factor = entry.factor.unwrap();
            assert!((1.0..=3.5).contains(&factor), "{factor}");
        }
        if let Some(tooth) = &entry.tooth {
            let digits: Vec<u32> = tooth.chars().map(|c| c.to_digit(10).unwrap()).collect();
            assert!(
                digits.len() == 2 && (1..=4).contains(&digits[0]) && (1..=8).contains(&digits[1]),
                "{tooth}"
            );
        }
        assert!(entry.date.unwrap() <= world.now.date());
        assert!(entry.last_modified.unwrap() <= world.now);
        assert!(
            billed_days.contains(&(entry.patient_id.as_deref().unwrap(), entry.date.unwrap())),
            "entry without a completed appointment that day"
        );
    }
    for kind in ["lst", "mat", "lab", "pabg", "text", "note"] {
        assert!(types.contains_key(kind), "{kind}: {types:?}");
    }
    assert!(
        types["lst"] > types["mat"] && types["lst"] > types["lab"],
        "{types:?}"
    );
    for (catalogue, code) in [
        ("BEMA", "01"),
        ("BEMA", "13b"),
        ("BEMA", "Ä1"),
        ("GOZ", "1040"),
        ("GOZ", "2080"),
        ("GOZ", "9010"),
        ("GOÄ", "5000"),
    ] {
        assert!(codes.contains(&(catalogue, code)), "{catalogue} {code}");
    }
    let pzr = location
        .entries
        .iter()
        .find(|e| e.code.as_deref() == Some("1040") && e.factor == Some(2.3))
        .unwrap();
    let expected = (pzr.quantity.unwrap() * 28.0 * 0.0562421 * 2.3 * 100.0).round() as i64;
    assert_eq!(pzr.amount_cents(), Some(expected));
}

// ------------------------------------------------------------------ the API

/// Basic credentials, api_key, whether app and app_version are sent, expected status.
type AuthCase<'a> = (
    Option<(&'a str, &'a str)>,
    Option<&'a str>,
    bool,
    StatusCode,
);

#[tokio::test]
async fn both_basic_auth_and_api_key_are_required() {
    let h = start().await;
    let url = format!("{}/About/v1/Ping", h.location(0).ivoris_url);
    let app = [
        ("app", credentials::IVORIS_APP),
        ("app_version", credentials::IVORIS_APP_VERSION),
    ];
    let good = Some((credentials::IVORIS_USER, credentials::IVORIS_PASSWORD));
    let key = Some(credentials::IVORIS_API_KEY);
    let cases: [AuthCase; 6] = [
        (good, key, true, StatusCode::OK),
        (None, key, true, StatusCode::UNAUTHORIZED),
        (
            Some((credentials::IVORIS_USER, "wrong")),
            key,
            true,
            StatusCode::UNAUTHORIZED,
        ),
        (good, None, true, StatusCode::UNAUTHORIZED),
        (good, Some("wrong"), true, StatusCode::UNAUTHORIZED),
        (good, key, false, StatusCode::UNAUTHORIZED),
    ];
    for (basic, key, with_app, expected) in cases {
        let mut request = h.client.get(&url);
        if let Some((user, password)) = basic {
            request = request.basic_auth(user, Some(password));
        }
        if let Some(key) = key {
            request = request.query(&[("api_key", key)]);
        }
        if with_app {
            request = request.query(&app);
        }
        let status = request.send().await.unwrap().status();
        assert_eq!(status, expected, "{basic:?} {key:?} {with_app}");
    }
}

#[tokio::test]
async fn health_and_reference_routes_answer() {
    let h = start().await;
    let location = h.world_location(0);
    assert_eq!(
        h.json(0, "/About/v1/IvorisVersion", &[]).await,
        json!("8.2.91.120")
    );
    let profiles = h.json(0, "/Profile/v1/Profiles", &[]).await;
    assert_eq!(profiles[0]["Id"], json!(location.profile.id));
    assert_eq!(h.location(0).profile_id, location.profile.id);
    let chairs = h
        .ids(
            0,
            "/Appointment/v1/DentistChairs",
            &[("profileId", &location.profile.id)],
        )
        .await;
    assert_eq!(chairs.len(), location.chairs.len());
    let practitioners = h.json(0, "/Practitioner/v1/AllPractitioners", &[]).await;
    assert!(practitioners[0]["Abbreviation"].is_string());
    let templates = h.json(0, "/Appointment/v1/AppointmentTemplates", &[]).await;
    assert_eq!(templates.as_array().unwrap().len(), 16);
    assert!(templates[0]["DurationMinutes"].is_u64());
    let docs = h.json(0, "/About/v1/Documentation", &[]).await;
    assert!(docs["paths"]["/Documentation/v1/DocumentEntries"]["get"].is_object());
    assert!(docs["paths"]["/Patient/v1/AllPatients"].is_object());
    let unknown = h
        .client
        .get(format!(
            "{}/relay/nope/webservice/api/About/v1/Ping",
            h.root
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

async fn all_pages(h: &Harness, index: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    for page in 0.. {
        let ids = h
            .ids(
                index,
                "/Patient/v1/AllPatients",
                &[("page", &page.to_string())],
            )
            .await;
        if ids.is_empty() {
            break;
        }
        pages.push(ids);
    }
    pages
}

#[tokio::test]
async fn paging_returns_every_patient_exactly_once() {
    let h = start().await;
    h.sim.set_page_size(7);
    let expected: Vec<String> = h
        .world_location(1)
        .patients
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let pages = all_pages(&h, 1).await;
    assert_eq!(pages.len(), expected.len().div_ceil(7));
    assert!(pages.iter().all(|p| p.len() <= 7));
    assert_eq!(pages.concat(), expected);
    let past_end = h
        .ids(1, "/Patient/v1/AllPatients", &[("page", "999999999999")])
        .await;
    assert!(past_end.is_empty());
    let first = h.json(1, "/Patient/v1/AllPatients", &[]).await;
    assert_eq!(first[0]["Id"], json!(expected[0]));
    let patient = h
        .json(1, "/Patient/v1/Patient", &[("id", &expected[3])])
        .await;
    let parsed: Patient = serde_json::from_value(patient).unwrap();
    assert_eq!(parsed, h.world_location(1).patients[3]);
}

#[tokio::test]
async fn a_record_may_repeat_on_the_next_page() {
    let h = start().await;
    h.sim.set_page_size(10);
    h.faults(FaultUpdate {
        duplicate_on_page_rate: Some(1.0),
        ..FaultUpdate::default()
    });
    let pages = all_pages(&h, 0).await;
    assert!(pages.len() >= 3);
    for pair in pages.windows(2) {
        assert_eq!(pair[1][0], *pair[0].last().unwrap());
    }
    let distinct: HashSet<String> = pages.concat().into_iter().collect();
    assert_eq!(distinct.len(), h.world_location(0).patients.len());
}

fn window_ids(location: &Location, begin: NaiveDate, end: NaiveDate) -> Vec<String> {
    sorted(
        location
            .appointments
            .iter()
            .filter(|a| {
                let day = a.start.unwrap().date();
                day >= begin && day <= end
            })
            .map(|a| a.id.clone())
            .collect(),
    )
}

#[tokio::test]
async fn appointment_windows_include_both_boundary_days() {
    let h = start().await;
    let location = h.world_location(2);
    let mut days: Vec<NaiveDate> = location
        .appointments
        .iter()
        .map(|a| a.start.unwrap().date())
        .collect();
    days.sort();
    let busy = days[days.len() / 2];
    let windows = [
        (busy, busy),
        (busy - chrono::Duration::days(30), busy),
        (busy, busy + chrono::Duration::days(30)),
        (days[0], days[days.len() - 1]),
        (
            NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2020, 1, 31).unwrap(),
        ),
    ];
    for (begin, end) in windows {
        let b = begin.to_string();
        let e = end.to_string();
        let params = [
            ("profileId", location.profile.id.as_str()),
            ("begin", &b),
            ("end", &e),
        ];
        let served = h.ids(2, "/Appointment/v1/AllAppointments", &params).await;
        assert_eq!(
            sorted(served),
            window_ids(&location, begin, end),
            "{b}..{e}"
        );
    }
    let all = h
        .json(
            2,
            "/Appointment/v1/AllAppointments",
            &[("begin", "2020-01-01"), ("end", "2030-01-01")],
        )
        .await;
    let parsed: Vec<Appointment> = serde_json::from_value(all).unwrap();
    assert_eq!(parsed.len(), location.appointments.len());
    let day = busy.to_string();
    let text = h
        .get(
            2,
            "/Appointment/v1/AllAppointments",
            &[("begin", &day), ("end", &day)],
        )
        .await
        .1;
    assert!(
        text.contains("\"Start\":\"") && !text.contains('+') && !text.contains("Z\""),
        "date-times without offset"
    );
}

#[tokio::test]
async fn latest_appointments_are_those_changed_since() {
    let h = start().await;
    let location = h.world_location(0);
    for since in ["2026-09-01T00:00:00", "2026-09-30T12:00:00", "2026-10-01"] {
        let since_time = if since.len() == 10 {
            format!("{since}T00:00:00")
        } else {
            since.to_string()
        };
        let since_time = NaiveDateTime::parse_from_str(&since_time, "%Y-%m-%dT%H:%M:%S").unwrap();
        let expected = sorted(
            location
                .appointments
                .iter()
                .filter(|a| a.last_modified.unwrap() >= since_time)
                .map(|a| a.id.clone())
                .collect(),
        );
        let served = h
            .ids(0, "/Appointment/v1/LatestAppointments", &[("since", since)])
            .await;
        assert!(!expected.is_empty(), "{since}");
        assert_eq!(sorted(served), expected, "{since}");
    }
}

#[tokio::test]
async fn a_patients_appointments_and_entries_with_window() {
    let h = start().await;
    let location = h.world_location(0);
    let count = |p: &Patient| {
        location
            .entries
            .iter()
            .filter(|e| e.patient_id.as_deref() == Some(&p.id))
            .count()
    };
    let patient = location.patients.iter().max_by_key(|p| count(p)).unwrap();
    let own: Vec<String> = sorted(
        location
            .appointments
            .iter()
            .filter(|a| a.patient_id.as_deref() == Some(&patient.id))
            .map(|a| a.id.clone())
            .collect(),
    );
    let path = format!("/Appointment/v1/Patient/{}/AllAppointments", patient.id);
    assert_eq!(sorted(h.ids(0, &path, &[]).await), own);
    let entries: Vec<&DocumentEntry> = location
        .entries
        .iter()
        .filter(|e| e.patient_id.as_deref() == Some(&patient.id))
        .collect();
    let mut dates: Vec<NaiveDate> = entries.iter().map(|e| e.date.unwrap()).collect();
    dates.sort();
    let middle = dates[dates.len() / 2];
    let cases = [
        (None, None),
        (Some(middle), None),
        (None, Some(middle)),
        (Some(middle), Some(middle)),
    ];
    for (begin, end) in cases {
        let expected = sorted(
            entries
                .iter()
                .filter(|e| {
                    begin.is_none_or(|b| e.date.unwrap() >= b)
                        && end.is_none_or(|x| e.date.unwrap() <= x)
                })
                .map(|e| e.id.clone())
                .collect(),
        );
        let b = begin.map(|d| d.to_string());
        let e = end.map(|d| d.to_string());
        let mut params = vec![
            ("patientId", patient.id.as_str()),
            ("profileId", location.profile.id.as_str()),
        ];
        if let Some(b) = &b {
            params.push(("begin", b));
        }
        if let Some(e) = &e {
            params.push(("end", e));
        }
        let served = h.ids(0, "/Documentation/v1/DocumentEntries", &params).await;
        assert_eq!(sorted(served), expected, "{begin:?}..{end:?}");
    }
}

#[tokio::test]
async fn entries_go_missing_from_windowed_asks_and_never_from_unwindowed_ones() {
    let h = start().await;
    h.faults(FaultUpdate {
        missing_entries_rate: Some(1.0),
        ..FaultUpdate::default()
    });
    let location = h.world_location(1);
    let patient = location.entries[0].patient_id.clone().unwrap();
    let lines: Vec<_> = location
        .entries
        .iter()
        .filter(|e| e.patient_id.as_ref() == Some(&patient))
        .collect();
    let expected = sorted(lines.iter().map(|e| e.id.clone()).collect());
    let first_day = lines.iter().filter_map(|e| e.date).min().unwrap();
    let last_day = lines.iter().filter_map(|e| e.date).max().unwrap();
    let (begin, end) = (first_day.to_string(), last_day.to_string());
    for _ in 0..3 {
        let windowed = h
            .ids(
                1,
                "/Documentation/v1/DocumentEntries",
                &[("patientId", &patient), ("begin", &begin), ("end", &end)],
            )
            .await;
        assert!(windowed.len() < expected.len(), "nothing omitted");
        assert!(windowed.iter().all(|id| expected.contains(id)));
        let whole = h
            .ids(
                1,
                "/Documentation/v1/DocumentEntries",
                &[("patientId", &patient)],
            )
            .await;
        assert_eq!(
            sorted(whole),
            expected,
            "an unwindowed ask returns every line"
        );
    }
}

#[tokio::test]
async fn forced_failures_have_the_shapes_seen_in_the_field() {
    let h = start().await;
    let cases = [
        (
            json!({"gateway_timeout_rate": 1.0}),
            StatusCode::GATEWAY_TIMEOUT,
            "",
        ),
        (
            json!({"gateway_timeout_rate": 0.0, "unavailable_rate": 1.0}),
            StatusCode::SERVICE_UNAVAILABLE,
            "",
        ),
        (
            json!({"unavailable_rate": 0.0, "server_error_rate": 1.0}),
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"message":"An error has occurred."}"#,
        ),
        (json!({"profile": "none"}), StatusCode::OK, "\"Pong\""),
    ];
    for (update, status, body) in cases {
        h.sandbox(
            reqwest::Method::POST,
            "/_sandbox/faults",
            Some(update.clone()),
        )
        .await;
        let (got_status, got_body) = h.get(0, "/About/v1/Ping", &[]).await;
        assert_eq!((got_status, got_body.as_str()), (status, body), "{update}");
    }
    let counters = h
        .sandbox(reqwest::Method::GET, "/_sandbox/counters", None)
        .await;
    let ping = &counters["GET /About/v1/Ping"];
    for status in ["200", "500", "503", "504"] {
        assert_eq!(ping[status], json!(1), "{counters}");
    }
    let reset = h
        .sandbox(reqwest::Method::POST, "/_sandbox/counters/reset", None)
        .await;
    assert_eq!(reset, json!({}));
}

#[tokio::test]
async fn hostile_profile_fails_a_fifth_to_a_third_and_is_repeatable() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let h = start_with(9, Size::Small, FaultProfile::Hostile).await;
        h.faults(FaultUpdate {
            slow_rate: Some(0.0),
            ..FaultUpdate::default()
        });
        let mut statuses = Vec::new();
        for _ in 0..200 {
            statuses.push(h.get(0, "/About/v1/Ping", &[]).await.0.as_u16());
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    let failures = runs[0].iter().filter(|s| **s != 200).count();
    assert!((40..=66).contains(&failures), "{failures} of 200");
    for status in [500, 503, 504] {
        assert!(runs[0].contains(&status), "{status}");
    }
}

#[tokio::test]
async fn slow_answers_exceed_a_short_client_timeout() {
    let h = start().await;
    h.faults(FaultUpdate {
        slow_rate: Some(1.0),
        slow_delay_ms: Some(2_000),
        ..FaultUpdate::default()
    });
    let error = h
        .request(0, "/About/v1/Ping", &[])
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
}

#[tokio::test]
async fn the_fragile_server_answers_504_the_more_the_faster_one_installation_is_asked() {
    let h = start().await;
    let settings = h
        .sandbox(
            reqwest::Method::POST,
            "/_sandbox/faults",
            Some(json!({"fragile": true, "fragile_healthy_rate": 10.0})),
        )
        .await;
    assert_eq!(settings["fragile"], json!(true), "{settings}");
    // Slowly: five requests at least 200 ms apart stay below 10 per second.
    for _ in 0..5 {
        let (status, _) = h.get(0, "/About/v1/Ping", &[]).await;
        assert_eq!(status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Fast: eighty at once to another installation; past the tenth the
    // share of 504s rises to 95 %.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..80 {
        let request = h.request(1, "/About/v1/Ping", &[]);
        burst.spawn(async move { request.send().await.map(|r| r.status()) });
    }
    let mut gateway_timeouts = 0;
    while let Some(status) = burst.join_next().await {
        let status = status.unwrap().unwrap();
        assert!(matches!(status.as_u16(), 200 | 504), "{status}");
        gateway_timeouts += u32::from(status == StatusCode::GATEWAY_TIMEOUT);
    }
    assert!(gateway_timeouts > 40, "{gateway_timeouts} of 80");
    // The quiet installation is not dragged down by the busy one.
    let (status, _) = h.get(0, "/About/v1/Ping", &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn every_answer_takes_the_configured_latency() {
    let h = start().await;
    h.faults(FaultUpdate {
        latency_ms: Some(150),
        ..FaultUpdate::default()
    });
    let started = std::time::Instant::now();
    let (status, _) = h.get(0, "/About/v1/Ping", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(h.sim.faults().latency_ms, 150);
}

#[tokio::test]
async fn bad_parameters_get_400_with_a_json_message() {
    let h = start().await;
    let patient = h.world_location(0).patients[0].id.clone();
    let cases: [(&str, Vec<(&str, &str)>); 9] = [
        (
            "/Appointment/v1/AllAppointments",
            vec![("begin", "2026-13-01"), ("end", "2026-12-31")],
        ),
        (
            "/Appointment/v1/AllAppointments",
            vec![("begin", "01.10.2026"), ("end", "2026-12-31")],
        ),
        (
            "/Appointment/v1/AllAppointments",
            vec![("end", "2026-12-31")],
        ),
        (
            "/Appointment/v1/AllAppointments",
            vec![("begin", "2026-12-31"), ("end", "2026-01-01")],
        ),
        (
            "/Appointment/v1/LatestAppointments",
            vec![("since", "gestern")],
        ),
        ("/Appointment/v1/LatestAppointments", vec![]),
        (
            "/Documentation/v1/DocumentEntries",
            vec![("begin", "2026-01-01")],
        ),
        (
            "/Documentation/v1/DocumentEntries",
            vec![("patientId", &patient), ("end", "2026-02-30")],
        ),
        ("/Patient/v1/AllPatients", vec![("page", "-1")]),
    ];
    for (path, params) in cases {
        let (status, body) = h.get(0, path, &params).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {params:?}");
        let value: Value = serde_json::from_str(&body).unwrap();
        assert!(value["message"].is_string(), "{body}");
    }
    let (status, _) = h
        .get(0, "/Patient/v1/Patient", &[("id", "no-such-id")])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ------------------------------------------------------- clock and scripting

#[tokio::test]
async fn advancing_the_clock_simulates_practice_days() {
    let h = start_with(7, Size::Medium, FaultProfile::None).await;
    let before = h.sim.snapshot();
    let state = h
        .sandbox(reqwest::Method::GET, "/_sandbox/state", None)
        .await;
    assert_eq!(state["today"], json!("2026-10-01"));
    assert_eq!(state["locations"].as_array().unwrap().len(), 3);
    let summary = h
        .sandbox(reqwest::Method::POST, "/_sandbox/advance?days=7", None)
        .await;
    assert_eq!(summary["now"], json!("2026-10-08T10:15:00"));
    assert_eq!(h.sim.today(), NaiveDate::from_ymd_opt(2026, 10, 8).unwrap());
    let after = h.sim.snapshot();
    for (old, new) in before.locations.iter().zip(&after.locations) {
        assert!(
            new.patients.len() > old.patients.len(),
            "{}: no new patients",
            new.key
        );
        assert!(
            new.appointments.len() > old.appointments.len(),
            "{}: no new bookings",
            new.key
        );
        assert!(
            new.entries.len() > old.entries.len(),
            "{}: no new entries",
            new.key
        );
        let old_states: HashMap<&str, &Appointment> = old
            .appointments
            .iter()
            .map(|a| (a.id.as_str(), a))
            .collect();
        let mut changed = 0;
        for appointment in &new.appointments {
            let modified = appointment.last_modified.unwrap();
            assert!(modified <= after.now);
            if end_of(appointment) <= after.now {
                assert!(
                    ["Completed", "Cancelled", "NoShow", "Clarified"]
                        .contains(&appointment.state.as_deref().unwrap()),
                    "unsettled past appointment"
                );
            }
            if let Some(previous) = old_states.get(appointment.id.as_str())
                && previous.state != appointment.state
            {
                assert!(
                    modified > before.now,
                    "state change without LastModified bump"
                );
                changed += 1;
            }
        }
        assert!(changed > 10, "{}: {changed} state changes", new.key);
        let changed_patients = new
            .patients
            .iter()
            .zip(&old.patients)
            .filter(|(n, o)| n.email != o.email)
            .inspect(|(n, _)| assert!(n.last_modified.unwrap() > before.now))
            .count();
        assert!(changed_patients >= 1, "{}: no e-mail changed", new.key);
        assert!(
            new.entries
                .iter()
                .all(|e| e.last_modified.unwrap() <= after.now
                    && e.date.unwrap() <= after.now.date())
        );
    }
    let since = before.now.format("%Y-%m-%dT%H:%M:%S").to_string();
    let latest = h
        .ids(
            0,
            "/Appointment/v1/LatestAppointments",
            &[("since", &since)],
        )
        .await;
    let expected = after.locations[0]
        .appointments
        .iter()
        .filter(|a| a.last_modified.unwrap() >= before.now)
        .count();
    assert_eq!(latest.len(), expected);
    assert!(expected > 20);
}

#[test]
fn advancing_is_deterministic() {
    let run = || {
        let sim = IvorisSim::new(World::generate(4, Size::Small), FaultProfile::None, 4);
        sim.advance_days(10);
        serde_json::to_string(&sim.snapshot()).unwrap()
    };
    assert_eq!(run(), run());
}

#[tokio::test]
async fn scripted_changes_are_served_with_a_bumped_last_modified() {
    let h = start().await;
    let key = h.location(0).key.clone();
    let location = h.world_location(0);
    let now = h.sim.now();
    let booked = location
        .appointments
        .iter()
        .find(|a| a.state.as_deref() == Some("Booked"))
        .unwrap();
    h.sim.cancel_appointment(&key, &booked.id).unwrap();
    let other = location
        .appointments
        .iter()
        .find(|a| a.state.as_deref() == Some("Completed"))
        .unwrap();
    h.sim
        .set_appointment_state(&key, &other.id, "Verschoben")
        .unwrap();
    let patient = &location.patients[0];
    h.sim
        .set_patient_email(&key, &patient.id, Some("neu.adresse@example.org"))
        .unwrap();
    let mut entry = location.entries[0].clone();
    entry.id = "00000000-0000-4000-8000-000000000001".to_string();
    entry.patient_id = Some(patient.id.clone());
    h.sim.add_entry(&key, entry.clone()).unwrap();

    let since = now.format("%Y-%m-%dT%H:%M:%S").to_string();
    let latest: Vec<Appointment> = serde_json::from_value(
        h.json(
            0,
            "/Appointment/v1/LatestAppointments",
            &[("since", &since)],
        )
        .await,
    )
    .unwrap();
    let by_id: HashMap<&str, &Appointment> = latest.iter().map(|a| (a.id.as_str(), a)).collect();
    assert_eq!(
        by_id[booked.id.as_str()].state.as_deref(),
        Some("Cancelled")
    );
    assert_eq!(by_id[booked.id.as_str()].last_modified, Some(now));
    assert_eq!(
        by_id[other.id.as_str()].state.as_deref(),
        Some("Verschoben")
    );
    let served: Patient = serde_json::from_value(
        h.json(0, "/Patient/v1/Patient", &[("id", &patient.id)])
            .await,
    )
    .unwrap();
    assert_eq!(served.email.as_deref(), Some("neu.adresse@example.org"));
    assert_eq!(served.last_modified, Some(now));
    let entries = h
        .ids(
            0,
            "/Documentation/v1/DocumentEntries",
            &[("patientId", &patient.id)],
        )
        .await;
    assert!(entries.contains(&entry.id));
    assert!(h.sim.cancel_appointment("atlantis", &booked.id).is_err());
    assert!(h.sim.cancel_appointment(&key, "no-such-id").is_err());
}

#[tokio::test]
async fn malformed_raw_records_are_served_verbatim_among_valid_ones() {
    let h = start().await;
    let key = h.location(0).key.clone();
    let location = h.world_location(0);
    let patient = location.patients[1].id.clone();
    let raw_patient = json!({"Id": 4711, "Firstname": ["kaputt"], "Birthday": "31.02.1980"});
    let raw_appointment =
        json!({"PatientId": patient, "Start": "2026-02-30T25:00:00", "State": "Verschoben"});
    let raw_entry =
        json!({"Id": "e-raw", "PatientId": patient, "Amount": "zwölf Euro", "Date": "gestern"});
    let replacement = json!({"Id": location.patients[2].id, "Birthday": 19800101});
    h.sim
        .inject_raw(&key, RecordKind::Patient, raw_patient.clone())
        .unwrap();
    h.sim
        .inject_raw(&key, RecordKind::Appointment, raw_appointment.clone())
        .unwrap();
    h.sim
        .inject_raw(&key, RecordKind::Entry, raw_entry.clone())
        .unwrap();
    h.sim
        .replace_raw(
            &key,
            RecordKind::Patient,
            &location.patients[2].id,
            replacement.clone(),
        )
        .unwrap();

    let page = h.json(0, "/Patient/v1/AllPatients", &[]).await;
    let page = page.as_array().unwrap();
    assert_eq!(page.len(), location.patients.len() + 1);
    assert_eq!(page.last().unwrap(), &raw_patient);
    assert_eq!(page[2], replacement);
    assert_eq!(
        h.json(
            0,
            "/Patient/v1/Patient",
            &[("id", &location.patients[2].id)]
        )
        .await,
        replacement
    );
    let window = h
        .json(
            0,
            "/Appointment/v1/AllAppointments",
            &[("begin", "2026-10-01"), ("end", "2026-10-01")],
        )
        .await;
    assert!(window.as_array().unwrap().contains(&raw_appointment));
    let own = h
        .json(
            0,
            &format!("/Appointment/v1/Patient/{patient}/AllAppointments"),
            &[],
        )
        .await;
    assert!(own.as_array().unwrap().contains(&raw_appointment));
    let entries = h
        .json(
            0,
            "/Documentation/v1/DocumentEntries",
            &[("patientId", &patient)],
        )
        .await;
    assert!(entries.as_array().unwrap().contains(&raw_entry));
    let state = h
        .sandbox(reqwest::Method::GET, "/_sandbox/state", None)
        .await;
    assert_eq!(state["locations"][0]["raw_records"], json!(4));

    let over_http = json!({"Id": "via-http", "Lastname": 42});
    let body = json!({"location": key, "kind": "Patient", "value": over_http});
    h.sandbox(reqwest::Method::POST, "/_sandbox/raw", Some(body))
        .await;
    let page = h.json(0, "/Patient/v1/AllPatients", &[]).await;
    assert_eq!(page.as_array().unwrap().last().unwrap(), &over_http);
    let unknown = json!({"location": "atlantis", "kind": "Patient", "value": {}});
    let response = h
        .client
        .post(format!("{}/_sandbox/raw", h.root))
        .json(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[test]
fn advancing_survives_scripted_records_with_absurd_values() {
    let sim = IvorisSim::new(World::generate(2, Size::Small), FaultProfile::None, 2);
    let key = sim.with_world(|w| w.locations[0].key.clone());
    let mut weird = sim.with_world(|w| w.locations[0].appointments[0].clone());
    for (id, start, minutes, template) in [
        (
            "far-future",
            NaiveDateTime::MAX,
            u32::MAX,
            weird.template_id.clone(),
        ),
        (
            "far-past",
            NaiveDateTime::MIN,
            30,
            weird.template_id.clone(),
        ),
        ("no-template", sim.now(), 30, Some("unknown".to_string())),
        (
            "night",
            sim.now() + chrono::Duration::hours(12),
            u32::MAX,
            weird.template_id.clone(),
        ),
    ] {
        weird.id = id.to_string();
        weird.start = Some(start);
        weird.duration_minutes = Some(minutes);
        weird.template_id = template;
        weird.state = Some("Booked".to_string());
        sim.add_appointment(&key, weird.clone()).unwrap();
    }
    let summary = sim.advance_days(3);
    assert_eq!(summary.days, 3);
}

#[tokio::test]
async fn the_sandbox_starts_with_one_relay_url_per_location() {
    use ivoris_hubspot_sync::sandbox::{Sandbox, SandboxOptions};
    let sandbox = Sandbox::start(SandboxOptions::default()).await.unwrap();
    assert_eq!(sandbox.locations.len(), 3);
    let client = reqwest::Client::new();
    for location in &sandbox.locations {
        assert!(location.ivoris_url.starts_with(&sandbox.ivoris_root));
        assert!(location.ivoris_url.ends_with("/webservice/api"));
        let profiles: Value = client
            .get(format!("{}/Profile/v1/Profiles", location.ivoris_url))
            .basic_auth(credentials::IVORIS_USER, Some(credentials::IVORIS_PASSWORD))
            .query(&[
                ("app", credentials::IVORIS_APP),
                ("app_version", credentials::IVORIS_APP_VERSION),
                ("api_key", credentials::IVORIS_API_KEY),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(profiles[0]["Id"], json!(location.profile_id));
        assert_eq!(profiles[0]["Name"], json!(location.name));
    }
    let keys: Vec<&str> = sandbox.locations.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(keys, ["magdeburg", "leipzig", "halle"]);
    sandbox.shutdown().await;
}
