//! `stackdock members` and `stackdock tokens`: who belongs to the organisation, and the API
//! tokens they call with.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Map, Value, json};

use crate::client::Client;
use crate::commands::{print_json, print_rows, read_stdin_line, seg};
use crate::pages::PageArgs;
use crate::{CliResult, Conn};

#[derive(Subcommand)]
pub(crate) enum MembersCommand {
    /// Add a member to the organisation (needs members:full).
    Add {
        email: String,
        /// owner, admin, developer or viewer.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the organisation's members.
    List {
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        conn: Conn,
    },
    /// Change a member's role (needs members:full; the last owner stays owner).
    SetRole {
        /// The member's user id.
        user: String,
        #[arg(long)]
        role: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove a member from the organisation (needs members:full; not the last owner).
    Remove {
        /// The member's user id.
        user: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Subcommand)]
pub(crate) enum UsersCommand {
    /// Add a user to the organisation and print their one-time invitation (needs
    /// members:full); they accept it with `POST /api/v1/invitations/accept`, setting their
    /// password.
    Add {
        email: String,
        /// owner, admin, developer or viewer.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        conn: Conn,
    },
}

impl UsersCommand {
    pub(crate) fn conn(&self) -> &Conn {
        match self {
            Self::Add { conn, .. } => conn,
        }
    }
}

/// `stackdock password`: sets the caller's own password, for signing in to the web UI. It is
/// read from standard input (one line), so it stays out of the shell's history.
pub(crate) async fn password(conn: &Conn) -> CliResult {
    use std::io::IsTerminal;
    let client = Client::new(conn)?;
    let me = client.get("/api/v1/me").await?;
    if std::io::stdin().is_terminal() {
        eprint!("New password (12 characters or more; it shows as you type), then Enter: ");
    }
    let password = read_stdin_line("password", "password")?;
    client
        .send(
            client
                .request(reqwest::Method::PUT, "/api/v1/me/password")
                .json(&json!({"password": password})),
        )
        .await?;
    let email = me["email"].as_str().unwrap_or("-");
    if conn.json {
        print_json(&json!({"email": email, "password_set": true}));
    } else {
        println!("password set: sign in to the web UI as {email}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn users(cmd: UsersCommand) -> CliResult {
    let conn = cmd.conn().clone();
    let client = Client::new(&conn)?;
    let UsersCommand::Add { email, role, .. } = cmd;
    let out = client
        .post(
            "/api/v1/members",
            &json!({"email": email, "role": role, "invite": true}),
        )
        .await?;
    if conn.json {
        print_json(&out);
        return Ok(ExitCode::SUCCESS);
    }
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    println!(
        "{}  {:<10} {}",
        s(&out["user_id"]),
        s(&out["role"]),
        s(&out["email"])
    );
    println!(
        "invitation (shown once, good until {}): {}",
        s(&out["invitation"]["expires_at"]),
        s(&out["invitation"]["token"])
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub(crate) enum TokensCommand {
    /// Make an API token; its text is printed once and cannot be shown again.
    Create {
        /// A name to tell it apart in `tokens list`.
        #[arg(long)]
        name: Option<String>,
        /// At most your own role; your role when left out.
        #[arg(long)]
        role: Option<String>,
        /// Days until it expires; it never does when left out.
        #[arg(long)]
        expires_in_days: Option<i64>,
        /// Make it for another member, by user id (needs members:full).
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List your tokens (--everyone: every member's, with members:full). Never their text.
    List {
        #[arg(long)]
        everyone: bool,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke a token by id; calls made with it are refused from then on.
    Revoke {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

impl MembersCommand {
    pub(crate) fn conn(&self) -> &Conn {
        match self {
            Self::Add { conn, .. }
            | Self::List { conn, .. }
            | Self::SetRole { conn, .. }
            | Self::Remove { conn, .. } => conn,
        }
    }
}

impl TokensCommand {
    pub(crate) fn conn(&self) -> &Conn {
        match self {
            Self::Create { conn, .. } | Self::List { conn, .. } | Self::Revoke { conn, .. } => conn,
        }
    }
}

pub(crate) async fn members(cmd: MembersCommand) -> CliResult {
    let conn = cmd.conn().clone();
    let client = Client::new(&conn)?;
    let out = match cmd {
        MembersCommand::Add { email, role, .. } => {
            client
                .post("/api/v1/members", &json!({"email": email, "role": role}))
                .await?
        }
        MembersCommand::List { page, .. } => {
            let members = client.list("/api/v1/members", &[], &page).await?;
            print_rows(&conn, &members, member_line);
            return Ok(ExitCode::SUCCESS);
        }
        MembersCommand::SetRole { user, role, .. } => {
            let path = format!("/api/v1/members/{}", seg(&user));
            client
                .send(
                    client
                        .request(reqwest::Method::PATCH, &path)
                        .json(&json!({"role": role})),
                )
                .await?
        }
        MembersCommand::Remove { user, .. } => {
            client
                .delete(&format!("/api/v1/members/{}", seg(&user)))
                .await?;
            json!({"removed": user})
        }
    };
    if out.get("removed").is_some() && !conn.json {
        println!(
            "removed member {}",
            out["removed"].as_str().unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if conn.json {
        print_json(&out);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", member_line(&out));
    Ok(ExitCode::SUCCESS)
}

fn member_line(m: &Value) -> String {
    let s = |k: &str| m[k].as_str().unwrap_or("-").to_string();
    format!("{}  {:<10} {}", s("user_id"), s("role"), s("email"))
}

pub(crate) async fn tokens(cmd: TokensCommand) -> CliResult {
    let conn = cmd.conn().clone();
    let client = Client::new(&conn)?;
    let out = match cmd {
        TokensCommand::Create {
            name,
            role,
            expires_in_days,
            user,
            ..
        } => {
            let mut body = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    body.insert(k.into(), v);
                }
            };
            put("name", name.map(Value::from));
            put("role", role.map(Value::from));
            put("expires_in_days", expires_in_days.map(Value::from));
            put("user_id", user.map(Value::from));
            client.post("/api/v1/tokens", &Value::Object(body)).await?
        }
        TokensCommand::List { everyone, page, .. } => {
            let query = if everyone {
                vec![("all", "true".to_string())]
            } else {
                Vec::new()
            };
            let tokens = client.list("/api/v1/tokens", &query, &page).await?;
            print_rows(&conn, &tokens, token_line);
            return Ok(ExitCode::SUCCESS);
        }
        TokensCommand::Revoke { id, .. } => {
            client
                .delete(&format!("/api/v1/tokens/{}", seg(&id)))
                .await?
        }
    };
    if conn.json {
        print_json(&out);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", token_line(&out));
    if let Some(text) = out["token"].as_str() {
        println!("token (shown once; keep it safe): {text}");
    }
    Ok(ExitCode::SUCCESS)
}

fn token_line(t: &Value) -> String {
    let s = |k: &str| t[k].as_str().unwrap_or("-").to_string();
    let state = if t["revoked_at"].is_string() {
        "revoked".to_string()
    } else if let Some(at) = t["expires_at"].as_str() {
        format!("expires {at}")
    } else {
        "no expiry".to_string()
    };
    format!(
        "{}  {:<10} {:<16} {}  {}",
        s("id"),
        t["role"].as_str().unwrap_or("(member's)"),
        s("name"),
        s("email"),
        state
    )
}

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// The master keys, the current one first, with how many values each seals.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Make a new current key and seal everything again under it (the server keeps serving).
    Rotate {
        #[command(flatten)]
        conn: Conn,
    },
    /// Seal everything again under the current key, making no new one: how a rotation of keys
    /// given in STACKDOCK_MASTER_KEY finishes once every node runs with the new key first.
    Reseal {
        #[command(flatten)]
        conn: Conn,
    },
    /// Drop an old key once nothing is sealed under it.
    Retire {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

impl KeysCommand {
    pub(crate) fn conn(&self) -> &Conn {
        match self {
            Self::List { conn }
            | Self::Rotate { conn }
            | Self::Reseal { conn }
            | Self::Retire { conn, .. } => conn,
        }
    }
}

pub(crate) async fn keys(cmd: KeysCommand) -> CliResult {
    let conn = cmd.conn().clone();
    let client = Client::new(&conn)?;
    let out = match cmd {
        KeysCommand::List { .. } => {
            let all = PageArgs {
                all: true,
                ..PageArgs::default()
            };
            json!(client.list("/api/v1/keys", &[], &all).await?.items)
        }
        KeysCommand::Rotate { .. } => client.post("/api/v1/keys/rotate", &json!({})).await?,
        KeysCommand::Reseal { .. } => client.post("/api/v1/keys/reseal", &json!({})).await?,
        KeysCommand::Retire { id, .. } => {
            client.delete(&format!("/api/v1/keys/{}", seg(&id))).await?;
            json!({"retired": id})
        }
    };
    if conn.json {
        print_json(&out);
    } else if let Some(keys) = out.as_array() {
        for k in keys {
            println!(
                "{}  {:<8} {} sealed value(s)",
                k["id"].as_str().unwrap_or("-"),
                if k["current"] == true {
                    "current"
                } else {
                    "old"
                },
                k["sealed_values"]
            );
        }
    } else if let Some(id) = out["retired"].as_str() {
        println!("retired key {id}");
    } else {
        let r = &out["resealed"];
        let was = out["previous"]
            .as_str()
            .map(|p| format!(" (was {p})"))
            .unwrap_or_default();
        println!(
            "current key {}{was}; sealed again: {} dock key(s), {} operation input(s), {} step output(s)",
            out["current"].as_str().unwrap_or("-"),
            r["docks"],
            r["operation_inputs"],
            r["step_outputs"]
        );
        if let Some(left) = r["sealed_by_key"].as_object() {
            for (key, n) in left {
                println!("  {key}: {n} sealed value(s)");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
