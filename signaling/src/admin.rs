//! `classroom admin …`: accounts, schools and classrooms managed from the shell, on the same
//! data directory's database as the server (safe while it runs: SQLite in WAL mode, with a
//! busy timeout). For the first admin on a fresh install, for scripts that provision a school
//! year, and for an admin who lost every way in.

use std::io::{BufRead, Write};
use std::net::SocketAddr;

use clap::Subcommand;

use crate::config::Config;
use crate::domain::accounts::{
    self, AccountRole, NewAccount, School, SchoolId, UserId, Username, text_field,
};
use crate::domain::password::{self, PasswordError};
use crate::domain::timestamp::Timestamp;
use crate::services::signin;
use crate::store::{AccountPatch, AccountUpdate, Store, StoreError};

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Create an account; prints a one-time sign-in link (24 h) unless --password-stdin.
    CreateUser {
        username: String,
        /// teacher, operator or admin.
        #[arg(long)]
        role: AccountRole,
        /// The name people see [default: the username].
        #[arg(long)]
        name: Option<String>,
        /// The school (its name or id).
        #[arg(long)]
        school: Option<String>,
        /// Read the password from the first line of standard input instead.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every account.
    ListUsers,
    /// Set an account's password from the first line of standard input; signs it out
    /// everywhere.
    SetPassword { username: String },
    /// Disable an account: it cannot sign in, and its sessions end now.
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
    /// Print a new one-time sign-in link (24 h) for an account; earlier unused ones stop
    /// working.
    SigninLink { username: String },
    /// Register a school.
    CreateSchool { name: String },
    /// Add a classroom to a school (its name or id).
    AddClassroom { school: String, name: String },
    /// List schools and their classrooms.
    ListSchools,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("no account {0:?}")]
    NoSuchAccount(String),
    #[error("no school {0:?} (see `classroom admin list-schools`)")]
    NoSuchSchool(String),
    #[error("{0}")]
    Taken(String),
    #[error("that would leave no enabled admin to manage accounts")]
    LastAdmin,
    #[error("{0}")]
    Password(#[from] PasswordError),
    #[error("reading the password from standard input: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

impl From<accounts::FieldError> for AdminError {
    fn from(e: accounts::FieldError) -> Self {
        AdminError::Invalid(e.0)
    }
}

/// Runs one command against `config.data_dir`, reading a password from `input` when the
/// command takes one and writing what it has to say to `out`. Links are for `link_addr`.
pub async fn run(
    config: &Config,
    link_addr: SocketAddr,
    command: AdminCommand,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    crate::server::create_private_dir(&config.data_dir).map_err(|source| AdminError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let store = Store::open(&config.data_dir.join("classroom.db")).await?;
    let result = Admin {
        store: &store,
        link_addr,
        now: Timestamp::now(),
    }
    .run(command, input, out)
    .await;
    store.close().await;
    result
}

struct Admin<'a> {
    store: &'a Store,
    link_addr: SocketAddr,
    now: Timestamp,
}

impl Admin<'_> {
    async fn run(
        &self,
        command: AdminCommand,
        input: &mut dyn BufRead,
        out: &mut dyn Write,
    ) -> Result<(), AdminError> {
        match command {
            AdminCommand::CreateUser {
                username,
                role,
                name,
                school,
                password_stdin,
            } => {
                let username = Username::parse(&username)?;
                let display_name = match name {
                    Some(name) => text_field("name", &name, 1, 100)?,
                    None => username.to_string(),
                };
                let school_id = match school {
                    Some(school) => Some(self.school(&school).await?.id),
                    None => None,
                };
                let password_hash = if password_stdin {
                    Some(password::hash(read_password(input)?).await?)
                } else {
                    None
                };
                let new = NewAccount {
                    username,
                    display_name,
                    role,
                    school_id,
                    password_hash,
                };
                let account = match self.store.create_account(&new, self.now).await {
                    Ok(account) => account,
                    Err(StoreError::Duplicate { .. }) => {
                        return Err(AdminError::Taken(format!(
                            "there is already an account {}",
                            new.username
                        )));
                    }
                    Err(e) => return Err(e.into()),
                };
                writeln!(
                    out,
                    "Created {} {} (id {}).",
                    account.role, account.username, account.id
                )?;
                if !account.has_password {
                    self.print_link(account.id, out).await?;
                }
            }
            AdminCommand::ListUsers => {
                let schools = self.store.list_schools().await?;
                let school_name = |id: Option<SchoolId>| {
                    id.and_then(|id| schools.iter().find(|s| s.id == id))
                        .map_or("-", |s| s.name.as_str())
                };
                writeln!(
                    out,
                    "{:<5} {:<20} {:<9} {:<13} {:<24} name",
                    "id", "username", "role", "status", "school"
                )?;
                for a in self.store.list_accounts().await? {
                    let status = match (a.disabled, a.has_password) {
                        (true, _) => "disabled",
                        (false, true) => "active",
                        (false, false) => "no password",
                    };
                    writeln!(
                        out,
                        "{:<5} {:<20} {:<9} {:<13} {:<24} {}",
                        a.id,
                        a.username,
                        a.role,
                        status,
                        school_name(a.school_id),
                        a.display_name
                    )?;
                }
            }
            AdminCommand::SetPassword { username } => {
                let id = self.account(&username).await?;
                let hash = password::hash(read_password(input)?).await?;
                self.store.set_password_hash(id, &hash, None).await?;
                writeln!(out, "Password set for {username}; its sessions have ended.")?;
            }
            AdminCommand::Disable { username } => {
                self.set_disabled(&username, true).await?;
                writeln!(out, "Disabled {username}; its sessions have ended.")?;
            }
            AdminCommand::Enable { username } => {
                self.set_disabled(&username, false).await?;
                writeln!(out, "Enabled {username}.")?;
            }
            AdminCommand::SigninLink { username } => {
                let id = self.account(&username).await?;
                self.print_link(id, out).await?;
            }
            AdminCommand::CreateSchool { name } => {
                let name = text_field("name", &name, 1, 200)?;
                let school = match self.store.create_school(&name, self.now).await {
                    Ok(school) => school,
                    Err(StoreError::Duplicate { .. }) => {
                        return Err(AdminError::Taken(format!(
                            "there is already a school named {name:?}"
                        )));
                    }
                    Err(e) => return Err(e.into()),
                };
                writeln!(out, "Created school {:?} (id {}).", school.name, school.id)?;
            }
            AdminCommand::AddClassroom { school, name } => {
                let school = self.school(&school).await?;
                let name = text_field("name", &name, 1, 100)?;
                let classroom = match self
                    .store
                    .create_classroom(school.id, &name, self.now)
                    .await
                {
                    Ok(classroom) => classroom,
                    Err(StoreError::Duplicate { .. }) => {
                        return Err(AdminError::Taken(format!(
                            "{:?} already has a classroom named {name:?}",
                            school.name
                        )));
                    }
                    Err(e) => return Err(e.into()),
                };
                writeln!(
                    out,
                    "Added classroom {:?} to {:?} (id {}).",
                    classroom.name, school.name, classroom.id
                )?;
            }
            AdminCommand::ListSchools => {
                let schools = self.store.list_schools().await?;
                if schools.is_empty() {
                    writeln!(out, "No schools yet.")?;
                }
                for school in schools {
                    writeln!(out, "{:<5} {}", school.id, school.name)?;
                    for c in self.store.list_classrooms(school.id).await? {
                        writeln!(out, "      {:<5} {}", c.id, c.name)?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn account(&self, username: &str) -> Result<UserId, AdminError> {
        let parsed =
            Username::parse(username).map_err(|_| AdminError::NoSuchAccount(username.into()))?;
        self.store
            .account_by_username(parsed.as_str())
            .await?
            .map(|c| c.account.id)
            .ok_or_else(|| AdminError::NoSuchAccount(username.into()))
    }

    /// A school by exact name, else by id.
    async fn school(&self, name_or_id: &str) -> Result<School, AdminError> {
        if let Some(school) = self.store.school_by_name(name_or_id).await? {
            return Ok(school);
        }
        if let Ok(id) = name_or_id.trim().parse::<i64>()
            && let Some(school) = self.store.school(SchoolId(id)).await?
        {
            return Ok(school);
        }
        Err(AdminError::NoSuchSchool(name_or_id.into()))
    }

    async fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), AdminError> {
        let id = self.account(username).await?;
        let patch = AccountPatch {
            disabled: Some(disabled),
            ..AccountPatch::default()
        };
        match self.store.update_account(id, &patch).await? {
            AccountUpdate::Updated(_) => Ok(()),
            AccountUpdate::NoSuchAccount => Err(AdminError::NoSuchAccount(username.into())),
            AccountUpdate::LastAdmin => Err(AdminError::LastAdmin),
        }
    }

    async fn print_link(&self, user: UserId, out: &mut dyn Write) -> Result<(), AdminError> {
        let token =
            signin::new_signin_link(self.store, user, self.now, signin::LINK_TTL_SECS).await?;
        writeln!(
            out,
            "One-time sign-in link (24 h): {}",
            signin::signin_url(&self.link_addr.to_string(), &token)
        )?;
        Ok(())
    }
}

/// The first line of `input`, without its line ending, checked against the password rule.
fn read_password(input: &mut dyn BufRead) -> Result<String, AdminError> {
    let mut line = String::new();
    input.read_line(&mut line).map_err(AdminError::Stdin)?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    password::check_new(&password)?;
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn admin(
        config: &Config,
        command: AdminCommand,
        stdin: &str,
    ) -> Result<String, AdminError> {
        let mut out = Vec::new();
        run(
            config,
            "127.0.0.1:8080".parse().unwrap(),
            command,
            &mut stdin.as_bytes(),
            &mut out,
        )
        .await?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[tokio::test]
    async fn users_schools_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let out = admin(
            &config,
            AdminCommand::CreateSchool {
                name: "Shizi".into(),
            },
            "",
        )
        .await
        .unwrap();
        assert!(out.contains("Created school \"Shizi\""), "{out}");
        admin(
            &config,
            AdminCommand::AddClassroom {
                school: "Shizi".into(),
                name: "Grade 5".into(),
            },
            "",
        )
        .await
        .unwrap();
        let out = admin(
            &config,
            AdminCommand::CreateUser {
                username: "LiWei".into(),
                role: AccountRole::Teacher,
                name: Some("Li Wei".into()),
                school: Some("1".into()),
                password_stdin: false,
            },
            "",
        )
        .await
        .unwrap();
        assert!(
            out.contains("http://127.0.0.1:8080/signin.html#once="),
            "{out}"
        );
        let out = admin(&config, AdminCommand::ListUsers, "").await.unwrap();
        assert!(
            out.contains("liwei") && out.contains("no password") && out.contains("Shizi"),
            "{out}"
        );
        let out = admin(&config, AdminCommand::ListSchools, "").await.unwrap();
        assert!(out.contains("Grade 5"), "{out}");

        assert!(matches!(
            admin(
                &config,
                AdminCommand::SetPassword {
                    username: "liwei".into()
                },
                "short\n"
            )
            .await,
            Err(AdminError::Password(PasswordError::TooShort))
        ));
        assert!(matches!(
            admin(
                &config,
                AdminCommand::Disable {
                    username: "nobody".into()
                },
                ""
            )
            .await,
            Err(AdminError::NoSuchAccount(_))
        ));
        assert!(matches!(
            admin(
                &config,
                AdminCommand::AddClassroom {
                    school: "Nowhere".into(),
                    name: "x".into()
                },
                ""
            )
            .await,
            Err(AdminError::NoSuchSchool(_))
        ));
        assert!(matches!(
            admin(
                &config,
                AdminCommand::CreateSchool {
                    name: "Shizi".into()
                },
                ""
            )
            .await,
            Err(AdminError::Taken(_))
        ));
    }
}
