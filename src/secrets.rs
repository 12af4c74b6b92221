//! Secrets: the HubSpot token and each location's Ivoris password and API
//! key.
//!
//! They live in the operating system's credential store (Windows Credential
//! Manager, macOS Keychain, the Secret Service on Linux) or, for headless
//! runs, in environment variables — never in the settings file, the ledger
//! or the logs (DESIGN.md §3.8). A [`Secret`] cannot be serialized and prints
//! as `***`. [`Secrets`] resolves a [`SecretKey`] from the environment first,
//! then from a [`SecretStore`]; both are injected so tests touch neither the
//! process environment nor the real keyring.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

/// Service name under which every entry is filed in the OS credential store.
pub const SERVICE: &str = "ivoris-hubspot-sync";

/// Which secret is meant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretKey {
    /// The HubSpot private-app token.
    HubSpotToken,
    /// The Ivoris HTTP Basic password of a location (by location key).
    IvorisPassword(String),
    /// The Ivoris `api_key` query parameter of a location (by location key).
    IvorisApiKey(String),
}

impl SecretKey {
    /// The account name of the entry in the OS credential store.
    pub fn account(&self) -> String {
        match self {
            SecretKey::HubSpotToken => "hubspot-token".to_owned(),
            SecretKey::IvorisPassword(location) => format!("ivoris-password/{location}"),
            SecretKey::IvorisApiKey(location) => format!("ivoris-api-key/{location}"),
        }
    }

    /// Environment variables consulted, most specific first: the
    /// per-location name, then the one without suffix that serves all
    /// locations.
    pub fn env_vars(&self) -> Vec<String> {
        match self {
            SecretKey::HubSpotToken => vec!["HUBSPOT_TOKEN".to_owned()],
            SecretKey::IvorisPassword(location) => vec![
                format!("IVORIS_PASSWORD_{}", env_suffix(location)),
                "IVORIS_PASSWORD".to_owned(),
            ],
            SecretKey::IvorisApiKey(location) => vec![
                format!("IVORIS_API_KEY_{}", env_suffix(location)),
                "IVORIS_API_KEY".to_owned(),
            ],
        }
    }

    /// What the secret is, in German.
    pub fn describe_de(&self) -> String {
        match self {
            SecretKey::HubSpotToken => "HubSpot-Zugriffstoken".to_owned(),
            SecretKey::IvorisPassword(location) => {
                format!("Ivoris-Passwort für Standort „{location}“")
            }
            SecretKey::IvorisApiKey(location) => {
                format!("Ivoris-API-Schlüssel für Standort „{location}“")
            }
        }
    }

    /// What the secret is, in English.
    pub fn describe_en(&self) -> String {
        match self {
            SecretKey::HubSpotToken => "HubSpot access token".to_owned(),
            SecretKey::IvorisPassword(location) => {
                format!("Ivoris password for location \"{location}\"")
            }
            SecretKey::IvorisApiKey(location) => {
                format!("Ivoris API key for location \"{location}\"")
            }
        }
    }
}

/// `magdeburg-nord` → `MAGDEBURG_NORD`.
fn env_suffix(location: &str) -> String {
    location.to_uppercase().replace('-', "_")
}

/// A secret value. Prints as `***` and is deliberately not `Serialize`, so
/// it cannot end up in a log line, a settings file or the ledger by
/// accident; [`Secret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it (an HTTP header or query).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a secret could not be had. Never contains a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{}", missing_message(.0))]
    Missing(Vec<SecretKey>),
    #[error(
        "Zugriff auf den Anmeldeinformationsspeicher des Betriebssystems fehlgeschlagen ({account}: {message}); \
         unter Linux muss ein Secret Service laufen (z. B. GNOME-Schlüsselbund oder KWallet), sonst die Zugangsdaten als Umgebungsvariablen setzen / \
         Could not access the operating system's credential store ({account}: {message}); \
         on Linux a Secret Service must be running (e.g. GNOME Keyring or KWallet), otherwise set the credentials as environment variables"
    )]
    Store { account: String, message: String },
}

fn missing_message(keys: &[SecretKey]) -> String {
    let mut text = String::from("Zugangsdaten fehlen / Credentials missing:");
    for key in keys {
        let vars = key.env_vars();
        text.push_str(&format!(
            "\n  – {}: im Programm unter „Einstellungen“ hinterlegen oder Umgebungsvariable {} setzen\n    \
             {}: store it in the app under \"Settings\" or set the environment variable {}",
            key.describe_de(),
            vars.join(" oder "),
            key.describe_en(),
            vars.join(" or "),
        ));
    }
    text
}

/// A place secrets are kept.
pub trait SecretStore: Send + Sync {
    /// The stored value, `None` when there is no entry.
    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretError>;
    /// Stores or replaces the value.
    fn set(&self, key: &SecretKey, secret: &Secret) -> Result<(), SecretError>;
    /// Removes the entry; removing an absent entry is not an error.
    fn delete(&self, key: &SecretKey) -> Result<(), SecretError>;
}

/// The operating system's credential store, through `keyring`.
///
/// On Linux the Secret Service is reached over D-Bus by a blocking call;
/// call it from a blocking context (not directly on an async worker).
#[derive(Debug, Clone)]
pub struct OsSecretStore {
    /// Service name the entries are filed under; tests of other tools could
    /// use another, the app uses [`SERVICE`].
    service: String,
}

impl OsSecretStore {
    pub fn new() -> OsSecretStore {
        OsSecretStore {
            service: SERVICE.to_owned(),
        }
    }

    fn entry(&self, key: &SecretKey) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(&self.service, &key.account()).map_err(|error| store_error(key, error))
    }
}

impl Default for OsSecretStore {
    fn default() -> Self {
        OsSecretStore::new()
    }
}

impl SecretStore for OsSecretStore {
    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretError> {
        match self.entry(key)?.get_password() {
            Ok(value) => Ok(Some(Secret(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(error) => Err(store_error(key, error)),
        }
    }

    fn set(&self, key: &SecretKey, secret: &Secret) -> Result<(), SecretError> {
        self.entry(key)?
            .set_password(secret.expose())
            .map_err(|error| store_error(key, error))
    }

    fn delete(&self, key: &SecretKey) -> Result<(), SecretError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(error) => Err(store_error(key, error)),
        }
    }
}

/// Describes a keyring error without its payload: `BadEncoding` carries the
/// stored bytes, which may be the secret itself.
fn store_error(key: &SecretKey, error: keyring::Error) -> SecretError {
    let message = match error {
        keyring::Error::BadEncoding(_) => "stored value is not valid UTF-8".to_owned(),
        keyring::Error::Ambiguous(_) => "several matching entries".to_owned(),
        other => other.to_string(),
    };
    SecretError::Store {
        account: key.account(),
        message,
    }
}

/// Secrets held in memory: tests and the demo mode, which must never touch
/// the real credential store.
#[derive(Debug, Default)]
pub struct MemorySecretStore {
    /// Values by [`SecretKey::account`].
    values: Mutex<HashMap<String, String>>,
}

impl MemorySecretStore {
    pub fn new() -> MemorySecretStore {
        MemorySecretStore::default()
    }

    /// A store holding the sandbox credentials for the given locations.
    pub fn for_sandbox<'a>(locations: impl IntoIterator<Item = &'a str>) -> MemorySecretStore {
        use crate::sandbox::credentials;
        let store = MemorySecretStore::new();
        store.insert(&SecretKey::HubSpotToken, credentials::HUBSPOT_TOKEN);
        for location in locations {
            store.insert(
                &SecretKey::IvorisPassword(location.to_owned()),
                credentials::IVORIS_PASSWORD,
            );
            store.insert(
                &SecretKey::IvorisApiKey(location.to_owned()),
                credentials::IVORIS_API_KEY,
            );
        }
        store
    }

    fn insert(&self, key: &SecretKey, value: &str) {
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.account(), value.to_owned());
    }
}

impl SecretStore for MemorySecretStore {
    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretError> {
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(values.get(&key.account()).cloned().map(Secret))
    }

    fn set(&self, key: &SecretKey, secret: &Secret) -> Result<(), SecretError> {
        self.insert(key, secret.expose());
        Ok(())
    }

    fn delete(&self, key: &SecretKey) -> Result<(), SecretError> {
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key.account());
        Ok(())
    }
}

/// Reads one environment variable; injected so tests need not change the
/// process environment.
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The credentials of one Ivoris location.
#[derive(Debug, Clone)]
pub struct IvorisSecrets {
    /// HTTP Basic password.
    pub password: Secret,
    /// Value of the `api_key` query parameter.
    pub api_key: Secret,
}

/// Resolves secrets: environment variables first (headless runs), then the
/// credential store.
pub struct Secrets<'a> {
    /// Source of environment variables.
    env: EnvLookup,
    /// The credential store consulted when no variable is set.
    store: &'a dyn SecretStore,
}

impl<'a> Secrets<'a> {
    /// Resolution over the real process environment.
    pub fn from_process_env(store: &'a dyn SecretStore) -> Secrets<'a> {
        Secrets::new(Box::new(|name| std::env::var(name).ok()), store)
    }

    pub fn new(env: EnvLookup, store: &'a dyn SecretStore) -> Secrets<'a> {
        Secrets { env, store }
    }

    /// Resolution from a fixed map of variables (tests, the sandbox).
    pub fn with_env_map(env: HashMap<String, String>, store: &'a dyn SecretStore) -> Secrets<'a> {
        Secrets::new(Box::new(move |name| env.get(name).cloned()), store)
    }

    /// The secret, or `None` when neither a variable nor the store has it.
    /// Empty values count as absent.
    pub fn find(&self, key: &SecretKey) -> Result<Option<Secret>, SecretError> {
        for name in key.env_vars() {
            if let Some(value) = (self.env)(&name).filter(|value| !value.trim().is_empty()) {
                return Ok(Some(Secret(value)));
            }
        }
        Ok(self
            .store
            .get(key)?
            .filter(|secret| !secret.expose().trim().is_empty()))
    }

    /// The secret, or an error naming it.
    pub fn require(&self, key: &SecretKey) -> Result<Secret, SecretError> {
        self.find(key)?
            .ok_or_else(|| SecretError::Missing(vec![key.clone()]))
    }

    /// The Ivoris password and API key of a location; reports both when
    /// both are missing.
    pub fn ivoris(&self, location: &str) -> Result<IvorisSecrets, SecretError> {
        let password_key = SecretKey::IvorisPassword(location.to_owned());
        let api_key_key = SecretKey::IvorisApiKey(location.to_owned());
        match (self.find(&password_key)?, self.find(&api_key_key)?) {
            (Some(password), Some(api_key)) => Ok(IvorisSecrets { password, api_key }),
            (password, api_key) => {
                let mut missing = Vec::new();
                if password.is_none() {
                    missing.push(password_key);
                }
                if api_key.is_none() {
                    missing.push(api_key_key);
                }
                Err(SecretError::Missing(missing))
            }
        }
    }

    /// Checks every secret a sync of these locations needs and lists all
    /// missing ones at once, so the user fixes them in one go.
    pub fn check<'l>(
        &self,
        locations: impl IntoIterator<Item = &'l str>,
    ) -> Result<(), SecretError> {
        let mut keys = vec![SecretKey::HubSpotToken];
        for location in locations {
            keys.push(SecretKey::IvorisPassword(location.to_owned()));
            keys.push(SecretKey::IvorisApiKey(location.to_owned()));
        }
        let mut missing = Vec::new();
        for key in keys {
            if self.find(&key)?.is_none() {
                missing.push(key);
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(SecretError::Missing(missing))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn secret_never_prints_its_value() {
        let secret = Secret::new("pat-na1-geheim");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "***");
        let ivoris = IvorisSecrets {
            password: Secret::new("pw-geheim"),
            api_key: Secret::new("key-geheim"),
        };
        assert!(!format!("{ivoris:?}").contains("geheim"));
        assert_eq!(secret.expose(), "pat-na1-geheim");
    }

    #[test]
    fn env_var_names_follow_the_location_key() {
        assert_eq!(
            SecretKey::IvorisPassword("magdeburg-nord".into()).env_vars(),
            ["IVORIS_PASSWORD_MAGDEBURG_NORD", "IVORIS_PASSWORD"]
        );
        assert_eq!(
            SecretKey::IvorisApiKey("halle".into()).env_vars(),
            ["IVORIS_API_KEY_HALLE", "IVORIS_API_KEY"]
        );
        assert_eq!(SecretKey::HubSpotToken.env_vars(), ["HUBSPOT_TOKEN"]);
    }

    #[test]
    fn environment_wins_over_store_and_specific_over_fallback() {
        let store = MemorySecretStore::new();
        store
            .set(&SecretKey::HubSpotToken, &Secret::new("from-store"))
            .expect("set");
        store
            .set(
                &SecretKey::IvorisPassword("halle".into()),
                &Secret::new("store-halle"),
            )
            .expect("set");
        let secrets = Secrets::with_env_map(
            env(&[
                ("HUBSPOT_TOKEN", "from-env"),
                ("IVORIS_PASSWORD", "env-all"),
                ("IVORIS_PASSWORD_MAGDEBURG", "env-magdeburg"),
                ("IVORIS_API_KEY", "key-all"),
            ]),
            &store,
        );
        let get = |key: SecretKey| secrets.require(&key).expect("present").expose().to_owned();
        assert_eq!(get(SecretKey::HubSpotToken), "from-env");
        assert_eq!(
            get(SecretKey::IvorisPassword("magdeburg".into())),
            "env-magdeburg"
        );
        assert_eq!(get(SecretKey::IvorisPassword("halle".into())), "env-all");
        assert_eq!(get(SecretKey::IvorisApiKey("halle".into())), "key-all");
    }

    #[test]
    fn store_is_used_when_the_environment_has_nothing() {
        let store = MemorySecretStore::for_sandbox(["magdeburg"]);
        let secrets = Secrets::with_env_map(env(&[("HUBSPOT_TOKEN", " ")]), &store);
        let ivoris = secrets.ivoris("magdeburg").expect("sandbox credentials");
        assert_eq!(
            ivoris.password.expose(),
            crate::sandbox::credentials::IVORIS_PASSWORD
        );
        assert_eq!(
            secrets
                .require(&SecretKey::HubSpotToken)
                .expect("token")
                .expose(),
            crate::sandbox::credentials::HUBSPOT_TOKEN
        );
    }

    #[test]
    fn missing_secrets_are_named_per_location_without_values() {
        let store = MemorySecretStore::new();
        store
            .set(
                &SecretKey::IvorisApiKey("magdeburg".into()),
                &Secret::new("geheimer-schluessel"),
            )
            .expect("set");
        let secrets = Secrets::with_env_map(env(&[("IVORIS_PASSWORD_HALLE", "x")]), &store);
        let error = secrets
            .check(["magdeburg", "halle"])
            .expect_err("secrets missing");
        let SecretError::Missing(missing) = &error else {
            panic!("unexpected {error:?}");
        };
        assert_eq!(
            missing,
            &[
                SecretKey::HubSpotToken,
                SecretKey::IvorisPassword("magdeburg".into()),
                SecretKey::IvorisApiKey("halle".into()),
            ]
        );
        let text = error.to_string();
        assert!(
            text.contains("Ivoris-Passwort für Standort „magdeburg“"),
            "{text}"
        );
        assert!(
            text.contains("Ivoris API key for location \"halle\""),
            "{text}"
        );
        assert!(text.contains("IVORIS_PASSWORD_MAGDEBURG"), "{text}");
        assert!(!text.contains("geheimer-schluessel"), "{text}");
    }

    #[test]
    fn memory_store_deletes() {
        let store = MemorySecretStore::new();
        let key = SecretKey::HubSpotToken;
        store.set(&key, &Secret::new("t")).expect("set");
        store.delete(&key).expect("delete");
        assert_eq!(store.get(&key).expect("get"), None);
        store.delete(&key).expect("deleting twice is fine");
    }
}
