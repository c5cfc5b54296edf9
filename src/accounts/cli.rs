//! `gigafibre-acs user add|passwd|disable|enable|list`: people's accounts,
//! on the configured store (with an embedded store, the ACS must be
//! stopped; on PostgreSQL it may run). The first admin is made here:
//! there is no default password.

use std::io::{BufRead, IsTerminal, Write};
use std::time::SystemTime;

use thiserror::Error;

use super::{check_name, check_password, hash_password, new_user};
use crate::config::Config;
use crate::store::{Role, Store, StoreError};

/// What to do.
#[derive(Debug)]
pub enum UserAction {
    Add { name: String, role: Role },
    Passwd { name: String },
    Disable { name: String },
    Enable { name: String },
    List { json: bool },
}

/// Why the command failed; [`UserError::exit_code`] says how.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UserError {
    #[error("{0}")]
    Usage(String),
    #[error("user {0} already exists (change its password with `user passwd`)")]
    Exists(String),
    #[error("no user {0}")]
    NoSuchUser(String),
    #[error(transparent)]
    Account(#[from] super::AccountError),
    #[error("the store: {0}")]
    Store(#[from] StoreError),
}

impl UserError {
    /// 2 for what the caller can fix (usage, names, passwords, a store in
    /// use), 1 for failures of the store.
    pub fn exit_code(&self) -> u8 {
        match self {
            UserError::Store(StoreError::InUse { .. }) => 2,
            UserError::Store(_) => 1,
            _ => 2,
        }
    }
}

/// Where a new password comes from.
pub enum PasswordSource<'a> {
    /// The first line of standard input (`--password-stdin`).
    Stdin(&'a mut dyn BufRead),
    /// Asked twice on the terminal, not echoed.
    Prompt,
}

fn read_password(source: PasswordSource<'_>, name: &str) -> Result<String, UserError> {
    let password = match source {
        PasswordSource::Stdin(input) => {
            let mut line = String::new();
            input
                .read_line(&mut line)
                .map_err(|e| UserError::Usage(format!("reading the password from stdin: {e}")))?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
        PasswordSource::Prompt => {
            if !std::io::stdin().is_terminal() {
                return Err(UserError::Usage(
                    "no terminal to ask the password on: pass it on stdin with --password-stdin"
                        .into(),
                ));
            }
            let first = rpassword::prompt_password(format!("Password for {name}: "))
                .map_err(|e| UserError::Usage(format!("reading the password: {e}")))?;
            let again = rpassword::prompt_password("Again: ")
                .map_err(|e| UserError::Usage(format!("reading the password: {e}")))?;
            if first != again {
                return Err(UserError::Usage("the two passwords differ".into()));
            }
            first
        }
    };
    check_password(&password)?;
    Ok(password)
}

/// Runs `action` on `store`; what it did goes to `out`.
pub fn run(
    store: &dyn Store,
    action: UserAction,
    password: PasswordSource<'_>,
    out: &mut dyn Write,
) -> Result<(), UserError> {
    let now = crate::app::now_ms(SystemTime::now());
    match action {
        UserAction::Add { name, role } => {
            check_name(&name)?;
            if store.user(&name)?.is_some() {
                return Err(UserError::Exists(name));
            }
            let hash = hash_password(&read_password(password, &name)?)?;
            store.put_user(&new_user(&name, role, hash, now))?;
            store.flush_blocking()?;
            let _ = writeln!(out, "user {name} added ({role})");
        }
        UserAction::Passwd { name } => {
            let mut user = store
                .user(&name)?
                .ok_or_else(|| UserError::NoSuchUser(name.clone()))?;
            user.password_hash = hash_password(&read_password(password, &name)?)?;
            user.failures = 0;
            user.locked_until_ms = 0;
            store.put_user(&user)?;
            end_sessions(store, &name)?;
            store.flush_blocking()?;
            let _ = writeln!(
                out,
                "password of {name} changed; its console sessions ended"
            );
        }
        UserAction::Disable { name } => {
            set_disabled(store, &name, true)?;
            let _ = writeln!(out, "user {name} disabled; its console sessions ended");
        }
        UserAction::Enable { name } => {
            set_disabled(store, &name, false)?;
            let _ = writeln!(out, "user {name} enabled");
        }
        UserAction::List { json } => {
            let users = store.users()?;
            if json {
                let list: Vec<serde_json::Value> = users.iter().map(super::public_view).collect();
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
            } else {
                for u in &users {
                    let state = if u.disabled { "disabled" } else { "active" };
                    let _ = writeln!(out, "{:<24} {:<10} {state}", u.name, u.role);
                }
            }
        }
    }
    Ok(())
}

fn set_disabled(store: &dyn Store, name: &str, disabled: bool) -> Result<(), UserError> {
    let mut user = store
        .user(name)?
        .ok_or_else(|| UserError::NoSuchUser(name.to_owned()))?;
    user.disabled = disabled;
    store.put_user(&user)?;
    if disabled {
        end_sessions(store, name)?;
    }
    store.flush_blocking()?;
    Ok(())
}

/// Logs a user out of every console session.
pub fn end_sessions(store: &dyn Store, name: &str) -> Result<(), StoreError> {
    let keys: Vec<String> = store
        .web_sessions()?
        .into_iter()
        .filter(|(_, s)| s.user == name)
        .map(|(k, _)| k)
        .collect();
    store.delete_web_sessions(&keys)
}

/// Runs the command on the configured store; the exit code.
pub fn main(config: &Config, action: UserAction, password_stdin: bool) -> u8 {
    let store = match crate::store::open_configured(config) {
        Ok(s) => s,
        Err(e) => {
            let e = UserError::Store(e);
            eprintln!("gigafibre-acs: user: {e}");
            return e.exit_code();
        }
    };
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    let source = if password_stdin {
        PasswordSource::Stdin(&mut lock)
    } else {
        PasswordSource::Prompt
    };
    let mut out = std::io::stdout();
    match run(store.as_ref(), action, source, &mut out) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("gigafibre-acs: user: {e}");
            e.exit_code()
        }
    }
}
