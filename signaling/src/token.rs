//! Join tokens: HS256 JWTs that say who may join which lesson, as what, with which grants.
//!
//! A token is checked before anything else happens on a socket (DESIGN §5). The checks that
//! need only the token live here (signature, expiry, the lesson the page asked for); whether
//! the lesson exists and is still open is the caller's, since that needs the database.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub use crate::domain::grants::Grants;
use crate::domain::lesson::LessonKey;
use crate::domain::role::Role;
use crate::domain::timestamp::Timestamp;
use crate::hex::random_hex;

/// The claims of a join token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub lesson: LessonKey,
    /// A random identity for the invited participant, stable across its reconnections.
    pub sub: String,
    /// The display name, e.g. "Grade 5 class, Shizi Village School".
    pub name: String,
    pub role: Role,
    pub grants: Grants,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds; a token is refused from this second on.
    pub exp: u64,
    /// The invite's id, its row in the `invites` table.
    pub jti: String,
}

impl Claims {
    /// Fresh claims for an invite: random identity and id, expiring `ttl_secs` after `now`.
    pub fn new_invite(
        lesson: LessonKey,
        role: Role,
        name: String,
        grants: Grants,
        now: Timestamp,
        ttl_secs: u64,
    ) -> Claims {
        let iat = u64::try_from(now.unix()).unwrap_or(0);
        Claims {
            lesson,
            sub: random_hex(16),
            name,
            role,
            grants,
            iat,
            exp: iat.saturating_add(ttl_secs),
            jti: random_hex(16),
        }
    }
}

/// Why a token was refused. Each maps to one protocol [`ErrorCode`](crate::protocol::ErrorCode).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of ours: garbage, a bad signature, another algorithm, missing claims.
    #[error("the join token is not valid")]
    Invalid,
    #[error("the join token has expired")]
    Expired,
    #[error("the join token is for lesson {token}, not lesson {wanted}")]
    WrongLesson { token: LessonKey, wanted: LessonKey },
    /// Signing failed; a server fault, never the client's.
    #[error("could not sign a join token: {0}")]
    Signing(String),
}

/// Signs and checks join tokens with the server's secret.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("TokenKeys { .. }")
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> TokenKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        // An expired invite is expired: no grace period, so `token_expired` is exact.
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "iat", "sub", "jti"]);
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Checks a token's signature and expiry and, when the client said which lesson it wants,
    /// that the token is for that lesson.
    pub fn verify(&self, token: &str, wanted: Option<LessonKey>) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let claims = data.claims;
        if let Some(wanted) = wanted
            && wanted != claims.lesson
        {
            return Err(TokenError::WrongLesson {
                token: claims.lesson,
                wanted,
            });
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lesson::LessonMode;
    use sfu::Source;

    fn claims(lesson: LessonKey, now: Timestamp, ttl: u64) -> Claims {
        Claims::new_invite(
            lesson,
            Role::Classroom,
            "Shizi Village".into(),
            Grants::for_role(Role::Classroom, LessonMode::Delivery),
            now,
            ttl,
        )
    }

    #[test]
    fn issued_token_verifies() {
        let keys = TokenKeys::new(&[7; 32]);
        let c = claims(3, Timestamp::now(), 3600);
        let token = keys.issue(&c).unwrap();
        assert_eq!(keys.verify(&token, None).unwrap(), c);
        assert_eq!(keys.verify(&token, Some(3)).unwrap(), c);
    }

    #[test]
    fn forged_and_garbage_tokens_are_invalid() {
        let keys = TokenKeys::new(&[7; 32]);
        let other = TokenKeys::new(&[8; 32]);
        let forged = other.issue(&claims(3, Timestamp::now(), 3600)).unwrap();
        assert_eq!(keys.verify(&forged, None), Err(TokenError::Invalid));
        assert_eq!(keys.verify("not.a.jwt", None), Err(TokenError::Invalid));
        assert_eq!(keys.verify("", None), Err(TokenError::Invalid));

        // Same header and claims, signature of another token: still invalid.
        let good = keys.issue(&claims(3, Timestamp::now(), 3600)).unwrap();
        let (body, _) = good.rsplit_once('.').unwrap();
        let (_, sig) = forged.rsplit_once('.').unwrap();
        assert_eq!(
            keys.verify(&format!("{body}.{sig}"), None),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn expired_token_is_expired_with_no_leeway() {
        let keys = TokenKeys::new(&[7; 32]);
        let an_hour_ago = Timestamp::from_unix(Timestamp::now().unix() - 3600);
        // Expired ten seconds ago: inside jsonwebtoken's default 60 s leeway, so this also
        // checks that the leeway is off.
        let token = keys.issue(&claims(3, an_hour_ago, 3590)).unwrap();
        assert_eq!(keys.verify(&token, None), Err(TokenError::Expired));
    }

    #[test]
    fn token_for_another_lesson_is_wrong_lesson() {
        let keys = TokenKeys::new(&[7; 32]);
        let token = keys.issue(&claims(3, Timestamp::now(), 3600)).unwrap();
        assert_eq!(
            keys.verify(&token, Some(4)),
            Err(TokenError::WrongLesson {
                token: 3,
                wanted: 4
            })
        );
    }

    #[test]
    fn default_grants_follow_role_and_mode() {
        let teacher = Grants::for_role(Role::Teacher, LessonMode::Network);
        assert!(teacher.may_publish(Source::Screen) && teacher.may_publish(Source::ScreenAudio));
        let delivery = Grants::for_role(Role::Classroom, LessonMode::Delivery);
        assert_eq!(delivery.publish, vec![Source::Camera, Source::Microphone]);
        assert!(
            Grants::for_role(Role::Classroom, LessonMode::FamousTeacher)
                .publish
                .is_empty()
        );
        for role in [Role::Student, Role::Observer, Role::Operator] {
            let g = Grants::for_role(role, LessonMode::Delivery);
            assert!(g.publish.is_empty() && g.subscribe);
        }
    }
}
