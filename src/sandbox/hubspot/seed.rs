//! What a portal holds before the first sync ([`PortalSeed`]): records an
//! earlier integration left, derived from the synthetic practices so tests
//! can tell which patient each record stands for.

use std::collections::HashSet;

use crate::sandbox::PortalSeed;
use crate::sandbox::data::World;

/// The properties of every record of a type to create, in creation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedRecords {
    /// Contacts as `(property, value)` lists.
    pub contacts: Vec<Vec<(&'static str, String)>>,
}

/// The records `seed` puts into the portal for `world` (see [`PortalSeed`]
/// for exactly which).
pub fn records(seed: PortalSeed, world: &World) -> SeedRecords {
    match seed {
        PortalSeed::Empty => SeedRecords::default(),
        PortalSeed::PreviousContacts => SeedRecords {
            contacts: previous_contacts(world),
        },
    }
}

/// Every second patient with an e-mail address per location, without our
/// key; an address already taken by an earlier one is skipped.
fn previous_contacts(world: &World) -> Vec<Vec<(&'static str, String)>> {
    let mut taken = HashSet::new();
    let mut contacts = Vec::new();
    for location in &world.locations {
        let with_email = location.patients.iter().filter_map(|patient| {
            let email = patient.email.as_deref().map(str::trim)?;
            (!email.is_empty()).then_some((patient, email))
        });
        for (patient, email) in with_email.step_by(2) {
            if !taken.insert(email.to_lowercase()) {
                continue;
            }
            let mut properties = vec![("email", email.to_owned())];
            for (name, value) in [
                ("firstname", &patient.firstname),
                ("lastname", &patient.lastname),
            ] {
                if let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                    properties.push((name, value.to_owned()));
                }
            }
            contacts.push(properties);
        }
    }
    contacts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Size;

    #[test]
    fn the_previous_integration_left_every_second_patient_with_an_address() {
        let world = World::generate(3, Size::Small);
        let seeded = records(PortalSeed::PreviousContacts, &world).contacts;
        let with_email: usize = world
            .locations
            .iter()
            .map(|l| l.patients.iter().filter(|p| p.email.is_some()).count())
            .sum();
        assert!(seeded.len() * 2 <= with_email + world.locations.len());
        assert!(seeded.len() * 3 >= with_email, "about half");
        for contact in &seeded {
            assert!(contact.iter().any(|(name, _)| *name == "email"));
            assert!(!contact.iter().any(|(name, _)| name.starts_with("ivoris")));
        }
        let emails: HashSet<String> = seeded
            .iter()
            .flat_map(|c| c.iter().filter(|(n, _)| *n == "email"))
            .map(|(_, v)| v.to_lowercase())
            .collect();
        assert_eq!(emails.len(), seeded.len(), "addresses stay unique");
        assert!(records(PortalSeed::Empty, &world).contacts.is_empty());
    }
}
