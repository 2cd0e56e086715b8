//! The pages' data, one struct per template in `templates/`; askama checks each template
//! against its struct when the crate compiles, and escapes every value for HTML.

use askama::Template;
use stackdock_core::{Permission, Resource};

use super::Visit;
use super::form::Field;

/// Renders a page; a template that fails to render (it cannot, short of a bug) is a plain
/// message rather than a panic.
pub(crate) fn render(t: &impl Template) -> axum::response::Html<String> {
    axum::response::Html(t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a page did not render");
        "This page could not be shown; see the server log.".to_string()
    }))
}

/// What every page around its content shows: the title, who is signed in, what the
/// navigation offers their role, and the token the sign-out form carries.
pub(crate) struct Chrome {
    pub(crate) title: String,
    pub(crate) signed_in: bool,
    pub(crate) email: String,
    pub(crate) role: String,
    pub(crate) csrf: String,
    pub(crate) can_provision: bool,
    pub(crate) can_audit: bool,
    pub(crate) can_docks: bool,
}

impl Chrome {
    pub(crate) fn signed_in(v: &Visit, title: String) -> Self {
        Self {
            title,
            signed_in: true,
            email: v.caller.0.email.clone(),
            role: v.role().to_string(),
            csrf: v.csrf.clone(),
            can_provision: v.can(Permission::ProvisioningFull),
            can_audit: v.can(Permission::AuditRead),
            can_docks: v.can(Permission::DocksRead),
        }
    }

    pub(crate) fn anonymous(title: String) -> Self {
        Self {
            title,
            signed_in: false,
            email: String::new(),
            role: String::new(),
            csrf: String::new(),
            can_provision: false,
            can_audit: false,
            can_docks: false,
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub(crate) chrome: Chrome,
    pub(crate) status: u16,
    pub(crate) message: String,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub(crate) struct SignInPage {
    pub(crate) chrome: Chrome,
    pub(crate) token: String,
    pub(crate) email: String,
    pub(crate) error: Option<String>,
}

#[derive(Template)]
#[template(path = "invitation.html")]
pub(crate) struct InvitationPage {
    pub(crate) chrome: Chrome,
    pub(crate) token: String,
    pub(crate) error: Option<String>,
}

/// A resource as a row of the dashboard.
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) provider: String,
    pub(crate) dock: String,
    pub(crate) state: String,
    pub(crate) status: String,
    pub(crate) source: String,
    pub(crate) created: String,
}

impl Row {
    pub(crate) fn of(r: &Resource, dock: String) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name.clone(),
            kind: r.kind().as_str().to_string(),
            provider: r.provider.clone(),
            dock,
            state: r.provisioning_state.as_str().to_string(),
            status: r.status.clone().unwrap_or_default(),
            source: r.provisioning_source.as_str().to_string(),
            created: when(&r.created_at),
        }
    }
}

/// An instant as the pages show it: UTC to the second.
pub(crate) fn when(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// One `<option>` of a filter or a choice.
pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

impl Choice {
    pub(crate) fn list(
        items: impl IntoIterator<Item = (String, String)>,
        current: Option<&str>,
    ) -> Vec<Self> {
        items
            .into_iter()
            .map(|(value, label)| Self {
                selected: current == Some(value.as_str()),
                value,
                label,
            })
            .collect()
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub(crate) struct DashboardPage {
    pub(crate) chrome: Chrome,
    pub(crate) rows: Vec<Row>,
    pub(crate) kinds: Vec<Choice>,
    pub(crate) providers: Vec<Choice>,
    pub(crate) docks: Vec<Choice>,
    pub(crate) states: Vec<Choice>,
    pub(crate) sources: Vec<Choice>,
    pub(crate) name: String,
    /// The link to the next page, the filters kept.
    pub(crate) next: Option<String>,
    /// The change feed's position when the rows were read.
    pub(crate) after: i64,
    pub(crate) filtered: bool,
}

pub(crate) struct DockRow {
    pub(crate) name: String,
    pub(crate) provider: String,
    pub(crate) api_url: String,
    pub(crate) rate_limit: String,
    pub(crate) created: String,
}

#[derive(Template)]
#[template(path = "docks.html")]
pub(crate) struct DocksPage {
    pub(crate) chrome: Chrome,
    pub(crate) docks: Vec<DockRow>,
    pub(crate) next: Option<String>,
    pub(crate) can_connect: bool,
    pub(crate) providers: Vec<Choice>,
    pub(crate) name: String,
    pub(crate) api_url: String,
    pub(crate) settings: String,
    pub(crate) error: Option<String>,
}

#[derive(Template)]
#[template(path = "provision.html")]
pub(crate) struct ProvisionPage {
    pub(crate) chrome: Chrome,
    pub(crate) kinds: Vec<Choice>,
    pub(crate) docks: Vec<Choice>,
    /// The chosen kind's collection and the chosen dock, once both are chosen.
    pub(crate) collection: String,
    pub(crate) dock: String,
    pub(crate) fields: Vec<Field>,
    /// What is wrong that no one field answers for.
    pub(crate) error: Option<String>,
    /// Sent as the provision's idempotency key: a form sent twice makes one resource.
    pub(crate) idempotency: String,
}

pub(crate) struct CallRow {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) status: String,
    pub(crate) duration_ms: u64,
    pub(crate) at: String,
}

/// A button on the resource page, shown while the resource is in one of `states`.
pub(crate) struct ActionButton {
    pub(crate) action: &'static str,
    pub(crate) label: &'static str,
    pub(crate) states: &'static str,
    pub(crate) shown: bool,
}

#[derive(Template)]
#[template(path = "resource.html")]
pub(crate) struct ResourcePage {
    pub(crate) chrome: Chrome,
    pub(crate) id: String,
    pub(crate) collection: String,
    pub(crate) kind: String,
    pub(crate) dock: String,
    pub(crate) provider: String,
    pub(crate) provider_id: String,
    pub(crate) state: String,
    pub(crate) status: String,
    pub(crate) source: String,
    pub(crate) error_message: String,
    pub(crate) error_code: String,
    pub(crate) created: String,
    pub(crate) updated: String,
    pub(crate) actions: Vec<ActionButton>,
    pub(crate) calls: Vec<CallRow>,
    pub(crate) more_calls: bool,
    pub(crate) has_log: bool,
    pub(crate) log: Vec<String>,
    /// The `seq` of the last log line shown.
    pub(crate) log_seq: i64,
}

pub(crate) struct AuditRow {
    pub(crate) at: String,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) outcome: String,
    pub(crate) resource: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub(crate) struct AuditPage {
    pub(crate) chrome: Chrome,
    pub(crate) rows: Vec<AuditRow>,
    pub(crate) outcomes: Vec<Choice>,
    pub(crate) action: String,
    pub(crate) next: Option<String>,
}

pub(crate) struct MemberRow {
    pub(crate) user_id: String,
    pub(crate) email: String,
    pub(crate) role: String,
    pub(crate) roles: Vec<Choice>,
    pub(crate) since: String,
    pub(crate) is_self: bool,
}

#[derive(Template)]
#[template(path = "members.html")]
pub(crate) struct MembersPage {
    pub(crate) chrome: Chrome,
    pub(crate) members: Vec<MemberRow>,
    pub(crate) next: Option<String>,
    pub(crate) can_manage: bool,
    pub(crate) roles: Vec<Choice>,
    /// An invitation just made: shown this once.
    pub(crate) invitation: Option<(String, String)>,
    pub(crate) error: Option<String>,
}

pub(crate) struct TokenRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) role: String,
    pub(crate) created: String,
    pub(crate) expires: String,
    pub(crate) revoked: bool,
}

#[derive(Template)]
#[template(path = "tokens.html")]
pub(crate) struct TokensPage {
    pub(crate) chrome: Chrome,
    pub(crate) tokens: Vec<TokenRow>,
    pub(crate) next: Option<String>,
    /// A token just made: its text, shown this once.
    pub(crate) made: Option<String>,
    pub(crate) error: Option<String>,
}
