//! What an adapter accepts, per kind: a schema derived from a strict type, checked before any
//! call, naming the field at fault.

use serde_json::{Value, json};
use stackdock_core::ResourceKind;
use stackdock_docks::DockError;
use stackdock_docks::adapter::provision;
use stackdock_docks::config::SENSITIVE;

use super::Harness;
use crate::support::Run;

pub async fn config_schemas_are_derived_strict_and_mark_secrets(h: &impl Harness) {
    let adapter = h.adapter();
    for &kind in adapter.kinds() {
        let schema = adapter
            .config_schema(kind)
            .unwrap_or_else(|| panic!("{kind} is supported but has no config schema"));
        let json = schema.json();
        let properties = json["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{kind}: the schema has no properties: {json}"));
        assert_eq!(
            json["additionalProperties"],
            json!(false),
            "{kind}: the type must deny unknown fields"
        );
        let required: Vec<&str> = json["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for field in &required {
            assert!(
                properties.contains_key(*field),
                "{kind}: {field} is required but not described"
            );
        }

        let sample = h.sample_config(kind, "config-1");
        assert_eq!(
            schema.validate(&sample),
            Ok(()),
            "{kind}: the sample is valid"
        );
        for field in sample.keys() {
            assert!(
                properties.contains_key(field),
                "{kind}: {field} is not in the schema"
            );
        }

        // An unknown field is refused by name, before anything is recorded or called.
        let mut unknown = sample.clone();
        unknown.insert("surely_not_a_field".into(), json!(1));
        let refused = schema.validate(&unknown).expect_err("an unknown field");
        assert_eq!(refused.field, "surely_not_a_field", "{kind}: {refused}");
        refused_by_provision(h, kind, &unknown, "surely_not_a_field").await;

        // So is each missing required field.
        assert!(
            !required.is_empty(),
            "{kind}: a config with nothing required"
        );
        for field in &required {
            let mut missing = sample.clone();
            missing.remove(*field);
            let refused = schema.validate(&missing).expect_err("a missing field");
            assert_eq!(refused.field, *field, "{kind}: {refused}");
            refused_by_provision(h, kind, &missing, field).await;
        }

        // Sensitive fields are marked in the type and listed.
        let mut sensitive: Vec<&str> = schema.sensitive().iter().map(String::as_str).collect();
        let mut expected = h.sensitive_fields(kind);
        sensitive.sort();
        expected.sort();
        assert_eq!(sensitive, expected, "{kind}: sensitive fields");
        for field in &expected {
            assert_eq!(
                properties[*field][SENSITIVE],
                json!(true),
                "{kind}: {field} is not marked {SENSITIVE}"
            );
        }
    }
}

async fn refused_by_provision(
    h: &impl Harness,
    kind: ResourceKind,
    config: &serde_json::Map<String, Value>,
    field: &str,
) {
    let adapter = h.adapter();
    let dock = h.dock();
    let mut run = Run::new(&dock);
    let before = h.requests_received();
    let err = provision(&*adapter, kind, &mut run.ctx, &dock, config)
        .await
        .expect_err("a bad config is refused");
    assert!(
        matches!(&err, DockError::InvalidConfig(e) if e.field == field),
        "{kind}: expected {field} to be named: {err:?}"
    );
    assert_eq!(err.code(), "invalid_config");
    assert_eq!(
        h.requests_received(),
        before,
        "{kind}: a bad config reached the provider"
    );
    assert!(
        run.recorder.steps().is_empty(),
        "{kind}: a bad config recorded a step"
    );
}

pub async fn unsupported_kinds_are_refused_without_a_call(h: &impl Harness) {
    let adapter = h.adapter();
    let dock = h.dock();
    let mut run = Run::new(&dock);
    let supported = adapter.kinds().to_vec();
    let sample = h.sample_config(supported[0], "other-1");
    for kind in ResourceKind::ALL {
        if supported.contains(&kind) {
            continue;
        }
        assert!(
            adapter.config_schema(kind).is_none(),
            "{kind}: a schema for an unsupported kind"
        );
        let unsupported = |e: &DockError| matches!(e, DockError::Unsupported { provider, kind: k } if *provider == adapter.provider() && *k == kind);
        let err = provision(&*adapter, kind, &mut run.ctx, &dock, &sample)
            .await
            .expect_err("unsupported");
        assert!(unsupported(&err), "{kind}: {err:?}");
        let target = stackdock_docks::Tracked {
            kind,
            provider_resource_id: "1".into(),
            marker: Some(run.marker.clone()),
            last_seen: serde_json::Value::Null,
        };
        let err = adapter
            .observe_many(&mut run.ctx, &dock, kind, std::slice::from_ref(&target))
            .await
            .expect_err("unsupported");
        assert!(unsupported(&err), "{kind}: observe_many: {err:?}");
        let err = adapter
            .find_by_marker(&mut run.ctx, &dock, kind, &run.marker)
            .await
            .expect_err("unsupported");
        assert!(unsupported(&err), "{kind}: find_by_marker: {err:?}");
        let err = adapter
            .deprovision(&mut run.ctx, &dock, &target)
            .await
            .expect_err("unsupported");
        assert!(unsupported(&err), "{kind}: deprovision: {err:?}");
    }
    assert_eq!(h.requests_received(), 0, "a call for a kind never handled");
    assert!(run.recorder.steps().is_empty());
}
