//! HubSpot's error shape. Every refusal in the simulation is a `SimError`;
//! the routes turn it into `{status:"error", message, correlationId,
//! category, subCategory?, context?, errors?}` with the HTTP status, and
//! batch calls with per-input failures (207) list it in `errors`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::model::ObjectType;

/// One refusal, independent of how it reaches the client.
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    /// HTTP status of a whole-call failure (and `status` of a 207 entry's cause).
    pub status: u16,
    /// HubSpot's category (`VALIDATION_ERROR`, `CONFLICT`, `OBJECT_NOT_FOUND`, …).
    pub category: &'static str,
    /// Human-readable explanation, HubSpot's wording where known.
    pub message: String,
    /// The rarely filled parts, boxed to keep `Result<_, SimError>` small.
    pub details: Box<Details>,
}

/// The optional parts of an error body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    /// HubSpot's optional finer category.
    pub sub_category: Option<String>,
    /// `context` as the SDK's `StandardError` types it: lists of strings.
    pub context: BTreeMap<String, Vec<String>>,
    /// `errors` detail entries (already in wire form).
    pub errors: Vec<Value>,
    /// Extra top-level fields some errors carry (`links` of a 403).
    pub extra: Map<String, Value>,
}

impl SimError {
    pub fn new(status: u16, category: &'static str, message: impl Into<String>) -> SimError {
        SimError {
            status,
            category,
            message: message.into(),
            details: Box::default(),
        }
    }

    pub fn validation(message: impl Into<String>) -> SimError {
        SimError::new(400, "VALIDATION_ERROR", message)
    }

    pub fn not_found(message: impl Into<String>) -> SimError {
        SimError::new(404, "OBJECT_NOT_FOUND", message)
    }

    /// A single object id that does not exist (HubSpot answers 404 with an empty message).
    pub fn object_not_found(id: &str) -> SimError {
        SimError::not_found("Object not found.  objectId are usually numeric.")
            .with_context("id", vec![id.to_string()])
    }

    /// HubSpot's wording for a refused unique value. For e-mail it is the
    /// well-known "Contact already exists. Existing ID: N"; for unique custom
    /// properties the sandbox uses the same form with the property named.
    pub fn unique_conflict(object_type: ObjectType, property: &str, existing: u64) -> SimError {
        let message = if property == "email" {
            format!(
                "{} already exists. Existing ID: {existing}",
                object_type.singular()
            )
        } else {
            format!(
                "{} with the same value for unique property '{property}' already exists. Existing ID: {existing}",
                object_type.singular()
            )
        };
        SimError::new(409, "CONFLICT", message)
            .with_context("existingId", vec![existing.to_string()])
            .with_context("propertyName", vec![property.to_string()])
    }

    /// HubSpot's property validation error: the message embeds a JSON list
    /// of per-property results ("Property values were not valid: [...]").
    pub fn invalid_properties(problems: Vec<PropertyProblem>) -> SimError {
        let list: Vec<Value> = problems
            .iter()
            .map(|problem| {
                json!({
                    "isValid": false,
                    "message": problem.message,
                    "error": problem.code,
                    "name": problem.name,
                    "localizedErrorMessage": problem.message,
                })
            })
            .collect();
        let errors = problems
            .iter()
            .map(|problem| {
                json!({
                    "message": problem.message,
                    "code": problem.code,
                    "context": {"propertyName": [problem.name]},
                })
            })
            .collect();
        let mut error = SimError::validation(format!(
            "Property values were not valid: {}",
            Value::Array(list)
        ));
        error.details.errors = errors;
        error
    }

    pub fn with_context(mut self, key: &str, values: Vec<String>) -> SimError {
        self.details.context.insert(key.to_string(), values);
        self
    }

    pub fn with_sub_category(mut self, sub_category: &str) -> SimError {
        self.details.sub_category = Some(sub_category.to_string());
        self
    }

    /// The body of a whole-call failure.
    pub fn body(&self, correlation_id: &str) -> Value {
        let mut body = Map::new();
        body.insert("status".into(), json!("error"));
        body.insert("message".into(), json!(self.message));
        body.insert("correlationId".into(), json!(correlation_id));
        body.insert("category".into(), json!(self.category));
        if let Some(sub) = &self.details.sub_category {
            body.insert("subCategory".into(), json!(sub));
        }
        if !self.details.context.is_empty() {
            body.insert("context".into(), json!(self.details.context));
        }
        if !self.details.errors.is_empty() {
            body.insert("errors".into(), Value::Array(self.details.errors.clone()));
        }
        for (key, value) in &self.details.extra {
            body.insert(key.clone(), value.clone());
        }
        Value::Object(body)
    }

    /// An entry of a 207 response's `errors` (the SDK's `StandardError`
    /// requires status, category, message, context, errors and links).
    pub fn batch_entry(&self) -> Value {
        let mut entry = json!({
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": self.details.context,
            "errors": self.details.errors,
            "links": {},
        });
        if let (Some(sub), Some(map)) = (&self.details.sub_category, entry.as_object_mut()) {
            map.insert("subCategory".into(), json!(sub));
        }
        entry
    }
}

/// One property that failed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyProblem {
    /// The offending property.
    pub name: String,
    /// HubSpot's code (`PROPERTY_DOESNT_EXIST`, `READ_ONLY_VALUE`, `INVALID_OPTION`, …).
    pub code: &'static str,
    /// What is wrong with the value.
    pub message: String,
}
