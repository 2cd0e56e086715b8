//! Key rotation: everything sealed under a key other than the keyring's current one — dock
//! keys, sensitive config in operations' input, secrets minted into steps' output — is opened
//! and sealed again under the current key, while the engine keeps working.
//!
//! Each value is written back only if its row still holds what was read (a dock whose key was
//! changed meanwhile is left as it is now), and passes repeat until one finds nothing left, so
//! a value written under an old key by a run that read it before the rotation is caught by the
//! next pass. A key is retired only once nothing is sealed under it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use stackdock_core::SealedSecret;
use stackdock_store::{Batch, Reseal, SealedRows, Write};

use crate::recorder::sealed_for;
use crate::sealed::{reseal_config, sealed_fields};
use crate::{Engine, EngineError};

/// The most passes a rotation makes before it reports what is left.
const PASSES: usize = 5;

/// What a rotation did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ResealReport {
    pub docks: usize,
    pub operation_inputs: usize,
    pub step_outputs: usize,
    pub passes: usize,
    /// Values still sealed under each key after the last pass, the current key's included.
    pub sealed_by_key: BTreeMap<String, usize>,
}

impl Engine {
    /// Seals everything sealed under an older key again under the current one.
    pub async fn reseal(&self) -> Result<ResealReport, EngineError> {
        let mut report = ResealReport::default();
        for pass in 1..=PASSES {
            report.passes = pass;
            let rows = self.store().sealed_rows().await?;
            let writes = self.reseal_writes(&rows)?;
            if writes.is_empty() {
                break;
            }
            // Which count each write adds to, read before the writes are handed over.
            let counts: Vec<fn(&mut ResealReport) -> &mut usize> = writes
                .iter()
                .map(|w| -> fn(&mut ResealReport) -> &mut usize {
                    match w {
                        Reseal::DockKey { .. } => |r| &mut r.docks,
                        Reseal::OperationInput { .. } => |r| &mut r.operation_inputs,
                        Reseal::StepOutput { .. } => |r| &mut r.step_outputs,
                    }
                })
                .collect();
            let batches = writes
                .into_iter()
                .map(|w| Batch::new().push(Write::Reseal(w)))
                .collect();
            // A value changed meanwhile is refused alone and looked at again next pass.
            let results = self.store().apply_each(batches).await?;
            for (count, result) in counts.into_iter().zip(results) {
                if result.is_ok() {
                    *count(&mut report) += 1;
                }
            }
        }
        report.sealed_by_key = self.sealed_by_key().await?;
        Ok(report)
    }

    /// How many values are sealed under each key, in every org.
    pub async fn sealed_by_key(&self) -> Result<BTreeMap<String, usize>, EngineError> {
        let rows = self.store().sealed_rows().await?;
        let mut counts = BTreeMap::new();
        for key in self.keyring().key_ids() {
            counts.insert(key.to_string(), 0);
        }
        let mut count = |s: &SealedSecret| *counts.entry(s.key_id().to_string()).or_insert(0) += 1;
        rows.docks.iter().for_each(|d| count(&d.sealed_api_key));
        for op in &rows.operations {
            sealed_fields(&op.input["config"])
                .iter()
                .for_each(|(_, s)| count(s));
        }
        for (step, _) in &rows.steps {
            sealed_strings(&step.output, &mut |s| count(s));
        }
        Ok(counts)
    }

    fn reseal_writes(&self, rows: &SealedRows) -> Result<Vec<Reseal>, EngineError> {
        let keyring = self.keyring();
        let current = keyring.current_id();
        let stale = |s: &SealedSecret| s.key_id() != current.as_str();
        let mut writes = Vec::new();
        for dock in rows.docks.iter().filter(|d| stale(&d.sealed_api_key)) {
            let context = dock.id.to_string();
            let key = keyring
                .open(&dock.sealed_api_key, &context)
                .map_err(|source| EngineError::DockKey {
                    dock: dock.name.to_string(),
                    source,
                })?;
            writes.push(Reseal::DockKey {
                org_id: dock.org_id,
                id: dock.id,
                from: dock.sealed_api_key.clone(),
                to: keyring.seal(&key, &context),
            });
        }
        for op in &rows.operations {
            let Some(resource) = op.resource_id else {
                continue;
            };
            if let Some(config) = reseal_config(keyring, resource, &op.input["config"])? {
                let mut to = op.input.clone();
                to["config"] = config;
                writes.push(Reseal::OperationInput {
                    org_id: op.org_id,
                    id: op.id,
                    from: op.input.clone(),
                    to,
                });
            }
        }
        for (step, resource) in &rows.steps {
            let Some(resource) = resource else { continue };
            let context = sealed_for(*resource);
            let mut failed = None;
            let to = map_sealed_strings(&step.output, &mut |s| {
                if !stale(s) {
                    return None;
                }
                match keyring.open(s, &context) {
                    Ok(plain) => Some(keyring.seal(&plain, &context)),
                    Err(e) => {
                        failed.get_or_insert(e);
                        None
                    }
                }
            });
            if let Some(source) = failed {
                return Err(EngineError::SealedConfig {
                    field: format!("step {} of operation {}", step.name, step.operation_id),
                    source,
                });
            }
            if to != step.output {
                writes.push(Reseal::StepOutput {
                    operation_id: step.operation_id,
                    index: step.index,
                    from: step.output.clone(),
                    to,
                });
            }
        }
        Ok(writes)
    }
}

/// Calls `f` with every sealed secret string in `v`, at any depth.
fn sealed_strings(v: &Value, f: &mut impl FnMut(&SealedSecret)) {
    map_sealed_strings(v, &mut |s| {
        f(s);
        None
    });
}

/// `v` with each sealed secret string `f` answers for replaced by its answer.
fn map_sealed_strings(
    v: &Value,
    f: &mut impl FnMut(&SealedSecret) -> Option<SealedSecret>,
) -> Value {
    match v {
        Value::String(text) => match SealedSecret::parse(text) {
            Ok(s) => f(&s).map_or_else(|| v.clone(), |n| Value::String(n.as_str().into())),
            Err(_) => v.clone(),
        },
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| map_sealed_strings(i, f)).collect())
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, i)| (k.clone(), map_sealed_strings(i, f)))
                .collect(),
        ),
        other => other.clone(),
    }
}
