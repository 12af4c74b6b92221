//! What can go wrong talking to HubSpot, said so a practice manager
//! understands it (German and English: what happened, what to do).
//!
//! No variant carries a property value: HubSpot's messages can echo
//! e-mails, names or numbers, so every message taken from a response goes
//! through [`mask_personal`] before it is stored in an error.

use chrono::{DateTime, Utc};

/// A failed HubSpot call, after the client's own retries.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// 401: the token is wrong, revoked or expired.
    #[error("HubSpot refused the access token (401)")]
    Unauthorized,
    /// 403: the token lacks scopes the call needs.
    #[error("the HubSpot token lacks required scopes: {}", missing_scopes.join(", "))]
    Forbidden {
        /// Scopes HubSpot named as missing (may be empty when it names none).
        missing_scopes: Vec<String>,
    },
    /// The portal's daily request budget is used up.
    #[error("HubSpot's daily request limit is reached; it resets at {resets_at}")]
    DailyLimit {
        /// Midnight in the portal's time zone, when requests work again.
        resets_at: DateTime<Utc>,
    },
    /// HubSpot kept answering 429 although the client waited as asked.
    #[error("HubSpot kept refusing requests as too frequent")]
    RateLimited,
    /// 400 and similar: the request was refused as invalid.
    #[error("HubSpot refused the request as invalid ({category}): {message}")]
    Validation {
        /// HubSpot's message with personal values masked.
        message: String,
        /// HubSpot's category, e.g. `VALIDATION_ERROR`.
        category: String,
    },
    /// More inputs than one batch call may carry; nothing was sent.
    #[error("{count} inputs are more than the {max} one HubSpot batch call accepts")]
    TooManyInputs {
        /// Inputs given.
        count: usize,
        /// Largest batch HubSpot accepts.
        max: usize,
    },
    /// 404: the record, property or pipeline does not exist.
    #[error("HubSpot could not find the requested object: {message}")]
    NotFound {
        /// HubSpot's message with personal values masked.
        message: String,
    },
    /// 409: a record or definition with the same unique value exists.
    #[error("HubSpot reports a conflict with an existing record (existing id {existing_id:?})")]
    Conflict {
        /// The record already holding the value, when HubSpot names it.
        existing_id: Option<String>,
        /// HubSpot's message with personal values masked.
        message: String,
    },
    /// 5xx that persisted through every retry.
    #[error("HubSpot answered with server error {status} on every attempt")]
    Server {
        /// Last HTTP status seen.
        status: u16,
    },
    /// No usable answer (timeout, connection refused or dropped) after every retry.
    #[error("no usable answer from HubSpot: {reason}")]
    Transport {
        /// The kind of failure, without URLs or bodies.
        reason: String,
    },
    /// A non-repeatable write may or may not have been applied.
    #[error("HubSpot may or may not have applied the {operation}; it was not repeated")]
    Ambiguous {
        /// Which call (`merge`, `create`).
        operation: &'static str,
    },
    /// 414: the request's address (its list of properties) was longer
    /// than HubSpot's servers take.
    #[error("HubSpot refused the request's address as too long (414)")]
    AddressTooLong,
    /// A success answer that could not be read.
    #[error("HubSpot's answer could not be read: {reason}")]
    Decode {
        /// What was wrong with the body, without its content.
        reason: String,
    },
}

impl ClientError {
    /// What happened and what to do, in German.
    pub fn explain_de(&self) -> String {
        match self {
            ClientError::Unauthorized => "HubSpot hat den Zugangsschlüssel abgelehnt. Bitte in den Einstellungen einen gültigen Schlüssel (Private App oder Service Key) hinterlegen.".into(),
            ClientError::Forbidden { missing_scopes } => format!(
                "Dem HubSpot-Zugangsschlüssel fehlen Berechtigungen ({}). Bitte die Berechtigungen in HubSpot ergänzen und den Schlüssel neu hinterlegen.",
                scopes_text(missing_scopes)
            ),
            ClientError::DailyLimit { resets_at } => format!(
                "Das tägliche Anfragekontingent des HubSpot-Portals ist aufgebraucht. Die Synchronisation setzt ab {} fort; bis dahin wird nichts gesendet.",
                resets_at.format("%d.%m.%Y %H:%M UTC")
            ),
            ClientError::RateLimited => "HubSpot hat wiederholt zu viele Anfragen gemeldet. Bitte später erneut synchronisieren; andere Integrationen im Portal teilen sich das Kontingent.".into(),
            ClientError::Validation { message, .. } => format!(
                "HubSpot hat die Daten als ungültig abgelehnt: {message}. Bitte Zuordnung und Feldeinstellungen prüfen."
            ),
            ClientError::TooManyInputs { count, max } => format!(
                "Interner Fehler: {count} Datensätze in einem Aufruf, HubSpot erlaubt höchstens {max}. Nichts wurde gesendet."
            ),
            ClientError::NotFound { message } => format!(
                "HubSpot hat den Datensatz nicht gefunden ({message}). Er wurde vielleicht gelöscht oder zusammengeführt."
            ),
            ClientError::Conflict { existing_id, .. } => format!(
                "In HubSpot gibt es schon einen Datensatz mit demselben eindeutigen Wert{}. Bitte die Duplikatprüfung verwenden.",
                existing_id.as_deref().map(|id| format!(" (ID {id})")).unwrap_or_default()
            ),
            ClientError::Server { status } => format!(
                "HubSpot ist gerade gestört (Fehler {status}, auch nach mehreren Versuchen). Die Änderungen bleiben vorgemerkt; bitte später erneut synchronisieren."
            ),
            ClientError::Transport { .. } => "HubSpot war nicht erreichbar (Zeitüberschreitung oder Verbindungsabbruch, auch nach mehreren Versuchen). Bitte Internetverbindung prüfen und später erneut synchronisieren.".into(),
            ClientError::Ambiguous { operation } => format!(
                "Die Verbindung brach ab, nachdem HubSpot den Auftrag ({operation}) erhalten hatte; ob er ausgeführt wurde, ist unklar. Bitte in HubSpot nachsehen, bevor er wiederholt wird."
            ),
            ClientError::AddressTooLong => "HubSpot hat die Anfrage abgelehnt, weil ihre Adresse (die Liste der abgefragten Eigenschaften) zu lang war. Bitte den Support informieren.".into(),
            ClientError::Decode { .. } => "Die Antwort von HubSpot war unlesbar. Bitte erneut synchronisieren; tritt es wieder auf, den Support informieren.".into(),
        }
    }

    /// What happened and what to do, in English.
    pub fn explain_en(&self) -> String {
        match self {
            ClientError::Unauthorized => "HubSpot refused the access token. Enter a valid token (private app or service key) in the settings.".into(),
            ClientError::Forbidden { missing_scopes } => format!(
                "The HubSpot token lacks permissions ({}). Grant them in HubSpot and store the token again.",
                scopes_text(missing_scopes)
            ),
            ClientError::DailyLimit { resets_at } => format!(
                "The HubSpot portal's daily request budget is used up. The sync continues from {}; nothing is sent until then.",
                resets_at.format("%Y-%m-%d %H:%M UTC")
            ),
            ClientError::RateLimited => "HubSpot kept reporting too many requests. Sync again later; other integrations in the portal share the budget.".into(),
            ClientError::Validation { message, .. } => format!(
                "HubSpot refused the data as invalid: {message}. Check the mapping and field settings."
            ),
            ClientError::TooManyInputs { count, max } => format!(
                "Internal error: {count} records in one call, HubSpot allows at most {max}. Nothing was sent."
            ),
            ClientError::NotFound { message } => format!(
                "HubSpot could not find the record ({message}). It may have been deleted or merged."
            ),
            ClientError::Conflict { existing_id, .. } => format!(
                "HubSpot already has a record with the same unique value{}. Use the duplicate review.",
                existing_id.as_deref().map(|id| format!(" (id {id})")).unwrap_or_default()
            ),
            ClientError::Server { status } => format!(
                "HubSpot is having problems (error {status}, also after several attempts). The changes stay queued; sync again later."
            ),
            ClientError::Transport { .. } => "HubSpot could not be reached (timeout or dropped connection, also after several attempts). Check the internet connection and sync again later.".into(),
            ClientError::Ambiguous { operation } => format!(
                "The connection broke after HubSpot received the request ({operation}); whether it was carried out is unknown. Check in HubSpot before repeating it."
            ),
            ClientError::AddressTooLong => "HubSpot refused the request because its address (the list of properties asked for) was too long. Contact support.".into(),
            ClientError::Decode { .. } => "HubSpot's answer could not be read. Sync again; if it happens again, contact support.".into(),
        }
    }
}

fn scopes_text(scopes: &[String]) -> String {
    if scopes.is_empty() {
        "unbekannt / unknown".into()
    } else {
        scopes.join(", ")
    }
}

/// Masks what could be personal in a message from HubSpot: e-mail
/// addresses, runs of six or more digits (phone numbers, birthdays, ids)
/// and quoted values that are not property names.
pub fn mask_personal(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(end) = email_at(&chars, i) {
            out.push_str("<e-mail>");
            i = end;
            continue;
        }
        if c.is_ascii_digit() {
            let (end, digits) = digit_run(&chars, i);
            if digits >= 6 {
                out.push_str("<number>");
            } else {
                out.extend(&chars[i..end]);
            }
            i = end;
            continue;
        }
        if (c == '"' || c == '\'')
            && opens_quote(&chars, i)
            && let Some(close) = chars[i + 1..].iter().position(|x| *x == c)
        {
            let inner: String = chars[i + 1..i + 1 + close].iter().collect();
            out.push(c);
            if is_identifier(&inner) {
                out.push_str(&inner);
            } else {
                out.push_str("<value>");
            }
            out.push(c);
            i += close + 2;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn is_email_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

/// If an e-mail address starts at `start` (a local part followed by `@`
/// and a domain with a dot), the index after it.
fn email_at(chars: &[char], start: usize) -> Option<usize> {
    if start > 0 && is_email_char(chars[start - 1]) {
        return None;
    }
    let mut at = start;
    while at < chars.len() && is_email_char(chars[at]) {
        at += 1;
    }
    if at == start || chars.get(at) != Some(&'@') {
        return None;
    }
    let mut end = at + 1;
    while end < chars.len() && (chars[end].is_alphanumeric() || matches!(chars[end], '.' | '-')) {
        end += 1;
    }
    let domain: String = chars[at + 1..end].iter().collect();
    domain.trim_end_matches('.').contains('.').then_some(end)
}

/// A run of digits, possibly split by separators used in phone numbers
/// and dates; returns its end and how many digits it holds.
fn digit_run(chars: &[char], start: usize) -> (usize, usize) {
    let mut end = start;
    let mut digits = 0;
    while end < chars.len() {
        let c = chars[end];
        if c.is_ascii_digit() {
            digits += 1;
            end += 1;
        } else if matches!(c, ' ' | '-' | '/' | '.' | '+')
            && chars.get(end + 1).is_some_and(char::is_ascii_digit)
        {
            end += 1;
        } else {
            break;
        }
    }
    (end, digits)
}

/// A quote opens a value when it follows a boundary (not an apostrophe in a word).
fn opens_quote(chars: &[char], at: usize) -> bool {
    at == 0 || !chars[at - 1].is_alphanumeric()
}

/// Property names, JSON keys and HubSpot codes (`snake_case`,
/// `camelCase`, `UPPER_CASE`) are safe to show; capitalised words may be names.
fn is_identifier(text: &str) -> bool {
    let ascii = text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let starts_lower = text.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let upper_code = text.chars().all(|c| !c.is_ascii_lowercase());
    !text.is_empty() && ascii && (starts_lower || upper_code || text.contains('_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        assert_eq!(mask_personal(input), expected, "input: {input}");
    }

    #[test]
    fn personal_values_are_masked() {
        check(
            "Contact already exists. Existing ID: 123",
            "Contact already exists. Existing ID: 123",
        );
        check(
            "email anna.mueller@example.de taken",
            "email <e-mail> taken",
        );
        check("phone +49 391 1234567 invalid", "phone +<number> invalid");
        check("born 01.02.1980", "born <number>");
        check(
            "Property 'ivoris_patient_key' has value \"Jürgen Weiß\"",
            "Property 'ivoris_patient_key' has value \"<value>\"",
        );
        check("doesn't matter", "doesn't matter");
        check(
            "[{\"isValid\":false,\"error\":\"INVALID_FLOAT\",\"name\":\"Anna\"}]",
            "[{\"isValid\":false,\"error\":\"INVALID_FLOAT\",\"name\":\"<value>\"}]",
        );
        check("no @ here", "no @ here");
    }

    #[test]
    fn explanations_exist_in_both_languages() {
        let error = ClientError::Forbidden {
            missing_scopes: vec!["crm.objects.contacts.write".into()],
        };
        assert!(error.explain_de().contains("Berechtigungen"));
        assert!(error.explain_en().contains("permissions"));
    }
}
