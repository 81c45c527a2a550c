//! `/api/accounts` and `/api/schools`: an admin creates and changes accounts, hands out
//! one-time sign-in links, and registers schools and their classrooms.
//!
//! Reading schools and classrooms is open to every signed-in account, not only admins: a
//! teacher picks the classrooms to invite from them, an operator reports by school.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch, post};
use serde::{Deserialize, Deserializer, Serialize};

use super::link_host;
use crate::domain::accounts::{
    Account, AccountRole, Classroom, NewAccount, School, SchoolId, UserId, Username, text_field,
};
use crate::domain::password;
use crate::domain::timestamp::Timestamp;
use crate::edge::error::{ApiError, Json, Path};
use crate::edge::session::Caller;
use crate::services::signin;
use crate::state::AppState;
use crate::store::{AccountPatch, AccountUpdate, StoreError};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/accounts", get(list_accounts).post(create_account))
        .route("/accounts/{id}", patch(update_account))
        .route("/accounts/{id}/signin-link", post(signin_link))
        .route("/schools", get(list_schools).post(create_school))
        .route(
            "/schools/{id}/classrooms",
            get(list_classrooms).post(create_classroom),
        )
}

/// A one-time sign-in link as handed to an admin.
#[derive(Debug, Serialize)]
struct SigninLink {
    token: String,
    url: String,
    expires_at: Timestamp,
}

async fn make_link(
    state: &AppState,
    headers: &HeaderMap,
    user: UserId,
) -> Result<SigninLink, ApiError> {
    let now = state.clock.now();
    let token = signin::new_signin_link(&state.store, user, now, signin::LINK_TTL_SECS).await?;
    Ok(SigninLink {
        url: signin::signin_url(&link_host(state, headers), &token),
        token,
        expires_at: now.plus_secs(signin::LINK_TTL_SECS),
    })
}

async fn list_accounts(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<Account>>, ApiError> {
    caller.require_admin()?;
    Ok(Json(state.store.list_accounts().await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAccount {
    username: String,
    /// The name people see; the username when left out.
    #[serde(default)]
    display_name: Option<String>,
    role: AccountRole,
    #[serde(default)]
    school_id: Option<SchoolId>,
    /// Left out, the answer carries a one-time link instead, for the person to choose one.
    #[serde(default)]
    password: Option<String>,
}

#[derive(Debug, Serialize)]
struct CreatedAccount {
    account: Account,
    signin_link: Option<SigninLink>,
}

async fn check_school(state: &AppState, school: Option<SchoolId>) -> Result<(), ApiError> {
    if let Some(id) = school
        && state.store.school(id).await?.is_none()
    {
        return Err(ApiError::Invalid(format!("no school {id}")));
    }
    Ok(())
}

async fn create_account(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<CreateAccount>,
) -> Result<(StatusCode, Json<CreatedAccount>), ApiError> {
    caller.require_admin()?;
    let username = Username::parse(&body.username)?;
    let display_name = match &body.display_name {
        Some(name) => text_field("display_name", name, 1, 100)?,
        None => username.to_string(),
    };
    check_school(&state, body.school_id).await?;
    let password_hash = match body.password {
        Some(p) => {
            password::check_new(&p)?;
            Some(password::hash(p).await?)
        }
        None => None,
    };
    let new = NewAccount {
        username,
        display_name,
        role: body.role,
        school_id: body.school_id,
        password_hash,
    };
    let account = match state.store.create_account(&new, state.clock.now()).await {
        Ok(account) => account,
        Err(StoreError::Duplicate { .. }) => {
            return Err(ApiError::Conflict {
                code: "username_taken",
                message: format!("there is already an account {}", new.username),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let signin_link = if account.has_password {
        None
    } else {
        Some(make_link(&state, &headers, account.id).await?)
    };
    tracing::info!(user = %account.username, role = %account.role, "account created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedAccount {
            account,
            signin_link,
        }),
    ))
}

/// `Some(None)` for an explicit `null`, so a patch can clear a field it names.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateAccount {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    role: Option<AccountRole>,
    /// `null` takes the account out of its school.
    #[serde(default, deserialize_with = "nullable")]
    school_id: Option<Option<SchoolId>>,
    #[serde(default)]
    disabled: Option<bool>,
}

async fn update_account(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<UserId>,
    Json(body): Json<UpdateAccount>,
) -> Result<Json<Account>, ApiError> {
    caller.require_admin()?;
    let display_name = body
        .display_name
        .as_deref()
        .map(|n| text_field("display_name", n, 1, 100))
        .transpose()?;
    check_school(&state, body.school_id.flatten()).await?;
    let patch = AccountPatch {
        display_name,
        role: body.role,
        school_id: body.school_id,
        disabled: body.disabled,
    };
    match state.store.update_account(id, &patch).await? {
        AccountUpdate::Updated(account) => {
            tracing::info!(user = %account.username, ?patch, "account changed");
            Ok(Json(account))
        }
        AccountUpdate::NoSuchAccount => Err(ApiError::NotFound(format!("no account {id}"))),
        AccountUpdate::LastAdmin => Err(ApiError::Conflict {
            code: "last_admin",
            message: "this would leave no enabled admin to manage accounts".into(),
        }),
    }
}

/// A new one-time sign-in link for an account (a new teacher's first sign-in, or a forgotten
/// password); the account's earlier unused links stop working.
async fn signin_link(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<UserId>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<SigninLink>), ApiError> {
    caller.require_admin()?;
    let account = state
        .store
        .account(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no account {id}")))?;
    if account.disabled {
        return Err(ApiError::Conflict {
            code: "account_disabled",
            message: format!("{} is disabled; enable it first", account.username),
        });
    }
    let link = make_link(&state, &headers, id).await?;
    tracing::info!(user = %account.username, "sign-in link issued");
    Ok((StatusCode::CREATED, Json(link)))
}

async fn list_schools(
    _caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<School>>, ApiError> {
    Ok(Json(state.store.list_schools().await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedThing {
    name: String,
}

fn name_taken(what: &str, name: &str) -> ApiError {
    ApiError::Conflict {
        code: "name_taken",
        message: format!("there is already a {what} named {name:?}"),
    }
}

async fn create_school(
    caller: Caller,
    State(state): State<AppState>,
    Json(body): Json<NamedThing>,
) -> Result<(StatusCode, Json<School>), ApiError> {
    caller.require_admin()?;
    let name = text_field("name", &body.name, 1, 200)?;
    match state.store.create_school(&name, state.clock.now()).await {
        Ok(school) => Ok((StatusCode::CREATED, Json(school))),
        Err(StoreError::Duplicate { .. }) => Err(name_taken("school", &name)),
        Err(e) => Err(e.into()),
    }
}

async fn find_school(state: &AppState, id: SchoolId) -> Result<School, ApiError> {
    state
        .store
        .school(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no school {id}")))
}

async fn list_classrooms(
    _caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<SchoolId>,
) -> Result<Json<Vec<Classroom>>, ApiError> {
    find_school(&state, id).await?;
    Ok(Json(state.store.list_classrooms(id).await?))
}

async fn create_classroom(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<SchoolId>,
    Json(body): Json<NamedThing>,
) -> Result<(StatusCode, Json<Classroom>), ApiError> {
    caller.require_admin()?;
    let school = find_school(&state, id).await?;
    let name = text_field("name", &body.name, 1, 100)?;
    match state
        .store
        .create_classroom(school.id, &name, state.clock.now())
        .await
    {
        Ok(classroom) => Ok((StatusCode::CREATED, Json(classroom))),
        Err(StoreError::Duplicate { .. }) => {
            Err(name_taken(&format!("classroom in {}", school.name), &name))
        }
        Err(e) => Err(e.into()),
    }
}
