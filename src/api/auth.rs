//! Who is calling: bearer JWTs (HS256 with `auth.jwt_secret`, or RS256/EdDSA with
//! `auth.jwt_public_key_path`), their claims, and the role checks handlers ask for.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::problem::ApiError;
use crate::config::AuthConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Reviewer,
    Supervisor,
    Admin,
    System,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: i64,
}

/// The keys tokens are checked (and, for development, signed) with.
pub struct TokenKeys {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
}

impl TokenKeys {
    pub fn from_config(cfg: &AuthConfig) -> anyhow::Result<Arc<TokenKeys>> {
        let (decoding, encoding, algorithms) = match &cfg.jwt_public_key_path {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("auth.jwt_public_key_path {}: {e}", path.display())
                })?;
                let key = DecodingKey::from_rsa_pem(&pem)
                    .map(|k| (k, vec![Algorithm::RS256]))
                    .or_else(|_| {
                        DecodingKey::from_ed_pem(&pem).map(|k| (k, vec![Algorithm::EdDSA]))
                    })
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "auth.jwt_public_key_path: not an RSA or Ed25519 public key: {e}"
                        )
                    })?;
                (key.0, None, key.1)
            }
            None => {
                let secret = cfg.jwt_secret.expose().as_bytes();
                (
                    DecodingKey::from_secret(secret),
                    Some(EncodingKey::from_secret(secret)),
                    vec![Algorithm::HS256],
                )
            }
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 30;
        Ok(Arc::new(TokenKeys {
            decoding,
            encoding,
            validation,
        }))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims)
    }

    /// Signs a token (HS256 only: with a public key configured, tokens come from elsewhere).
    pub fn sign(&self, sub: &str, role: Role, exp: i64) -> anyhow::Result<String> {
        let key = self.encoding.as_ref().ok_or_else(|| {
            anyhow::anyhow!("tokens are verified with a public key; sign them with its private key")
        })?;
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: sub.to_string(),
                role,
                exp,
            },
            key,
        )?)
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub sub: String,
    pub role: Role,
}

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the role {}",
                roles
                    .iter()
                    .map(|r| format!("{r:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("unauthenticated", "missing Authorization: Bearer token")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("invalid_token", "expected Authorization: Bearer <JWT>")
            })?;
        let claims = state
            .tokens
            .verify(token)
            .map_err(|e| ApiError::unauthorized("invalid_token", format!("token refused: {e}")))?;
        if claims.sub.is_empty() || claims.sub.len() > 64 {
            return Err(ApiError::unauthorized(
                "invalid_token",
                "token refused: bad sub",
            ));
        }
        Ok(Caller {
            sub: claims.sub,
            role: claims.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn keys(secret: &str) -> Arc<TokenKeys> {
        TokenKeys::from_config(&AuthConfig {
            jwt_secret: Secret::new(secret),
            jwt_public_key_path: None,
        })
        .unwrap()
    }

    #[test]
    fn signed_tokens_verify_and_others_do_not() {
        let k = keys("one-secret");
        let far = 4_102_444_800;
        let token = k.sign("U1", Role::Reviewer, far).unwrap();
        let claims = k.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.role), ("U1", Role::Reviewer));
        assert!(keys("another").verify(&token).is_err(), "wrong secret");
        assert!(
            k.verify(&k.sign("U1", Role::User, 1_000_000_000).unwrap())
                .is_err(),
            "expired"
        );
        let parts: Vec<&str> = token.split('.').collect();
        let none = format!(
            "{}.{}.",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                br#"{"alg":"none","typ":"JWT"}"#
            ),
            parts[1]
        );
        assert!(k.verify(&none).is_err(), "alg none");
        assert!(k.verify("not.a.jwt").is_err());
    }

    #[test]
    fn roles_parse() {
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
    }
}
