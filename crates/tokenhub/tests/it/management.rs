//! The management API end to end: sessions, CSRF, login throttling, self-service keys,
//! admin operations, credits, usage, the OpenAPI document and the authorization matrix.

use std::collections::BTreeSet;

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

/// One caller of the API: its own cookie jar, and the CSRF token or bearer it sends.
#[derive(Clone)]
struct Caller {
    http: reqwest::Client,
    base: String,
    csrf: Option<String>,
    bearer: Option<String>,
    user_id: Option<i64>,
}

impl Caller {
    fn anonymous(base: &str) -> Caller {
        Caller {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            base: base.to_string(),
            csrf: None,
            bearer: None,
            user_id: None,
        }
    }

    fn with_bearer(base: &str, bearer: &str) -> Caller {
        Caller {
            bearer: Some(bearer.to_string()),
            ..Caller::anonymous(base)
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(csrf) = &self.csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        if let Some(bearer) = &self.bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("gateway answers")
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let response = self.send(method, path, body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method.clone(), path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    /// Signs up or logs in; keeps the cookie and the CSRF token.
    async fn session(base: &str, route: &str, name: &str, password: &str) -> Caller {
        let mut caller = Caller::anonymous(base);
        let body = json!({"username": name, "password": password});
        let value = caller.ok(Method::POST, route, Some(body)).await;
        caller.csrf = value["csrf_token"].as_str().map(str::to_string);
        caller.user_id = value["user"]["id"].as_i64();
        caller
    }
}

/// The cast of the authorization tests.
struct World {
    h: Harness,
    anonymous: Caller,
    a: Caller,
    b: Caller,
    admin: Caller,
    root: Caller,
    /// A's `sk-` key, used as a management credential (must always fail).
    api_key: Caller,
    a_key_id: i64,
    b_key_id: i64,
    mock_channel_id: i64,
}

async fn world(backend: Backend) -> World {
    let h = Harness::start(backend).await;
    let base = h.base.clone();
    let a = Caller::session(&base, "/api/auth/signup", "alice", "alice-password").await;
    let b = Caller::session(&base, "/api/auth/signup", "bob@example.com", "bob-password").await;
    let root_session = Caller::session(&base, "/api/auth/login", "root", "root-password").await;
    let new_admin = json!({"username": "ada", "password": "admin-password", "role": "admin"});
    root_session
        .ok(Method::POST, "/api/admin/users", Some(new_admin))
        .await;
    let admin = Caller::session(&base, "/api/auth/login", "ada", "admin-password").await;
    // Root acts through an admin token, so both credentials are covered.
    let token = root_session
        .ok(
            Method::POST,
            "/api/admin/tokens",
            Some(json!({"name": "tests"})),
        )
        .await;
    let root = Caller::with_bearer(&base, token["secret"].as_str().unwrap());
    let created = a
        .ok(Method::POST, "/api/me/keys", Some(json!({"name": "a-key"})))
        .await;
    let api_key = Caller::with_bearer(&base, created["secret"].as_str().unwrap());
    let a_key_id = created["key"]["id"].as_i64().unwrap();
    let b_key_id = b
        .ok(Method::POST, "/api/me/keys", Some(json!({"name": "b-key"})))
        .await["key"]["id"]
        .as_i64()
        .unwrap();
    let channels = root.ok(Method::GET, "/api/admin/channels", None).await;
    let mock_channel_id = channels["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mock")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    h.reload().await;
    World {
        anonymous: Caller::anonymous(&base),
        h,
        a,
        b,
        admin,
        root,
        api_key,
        a_key_id,
        b_key_id,
        mock_channel_id,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    UserA,
    UserB,
    Admin,
    Root,
    ApiKey,
}

const EVERYONE: &[Who] = &[Who::UserA, Who::UserB, Who::Admin, Who::Root];
const ADMINS: &[Who] = &[Who::Admin, Who::Root];
const ROOT: &[Who] = &[Who::Root];
const ONLY_A: &[Who] = &[Who::UserA];
const KEY: &[Who] = &[Who::ApiKey];
const ALL: [Who; 6] = [
    Who::Anonymous,
    Who::UserA,
    Who::UserB,
    Who::Admin,
    Who::Root,
    Who::ApiKey,
];

/// One endpoint of the matrix. `{…}` placeholders are filled per call; `fresh_*` ones
/// with a new resource each time, so destructive calls have something to destroy.
struct Case {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    allowed: &'static [Who],
}

fn case(method: Method, path: &'static str, body: Option<Value>, allowed: &'static [Who]) -> Case {
    Case {
        method,
        path,
        body,
        allowed,
    }
}

fn matrix() -> Vec<Case> {
    use Method as M;
    let model = json!({"id": "mock-gpt", "provider": "Mock", "context": 8192,
        "input_usd_per_mtok": "1", "output_usd_per_mtok": "2"});
    vec![
        case(M::GET, "/api/auth/session", None, EVERYONE),
        case(M::GET, "/api/me", None, EVERYONE),
        case(M::GET, "/api/me/ledger", None, EVERYONE),
        case(
            M::POST,
            "/api/me/redeem",
            Some(json!({"code": "{fresh_code}"})),
            EVERYONE,
        ),
        case(
            M::PUT,
            "/api/me/email",
            Some(json!({"email": null})),
            EVERYONE,
        ),
        case(M::GET, "/api/me/keys", None, EVERYONE),
        case(
            M::POST,
            "/api/me/keys",
            Some(json!({"name": "matrix"})),
            EVERYONE,
        ),
        case(M::GET, "/api/me/keys/{a_key}", None, ONLY_A),
        case(
            M::PATCH,
            "/api/me/keys/{a_key}",
            Some(json!({"name": "renamed"})),
            ONLY_A,
        ),
        case(M::DELETE, "/api/me/keys/{fresh_a_key}", None, ONLY_A),
        case(M::GET, "/api/me/usage", None, EVERYONE),
        case(M::GET, "/api/me/usage/summary", None, EVERYONE),
        case(M::GET, "/api/me/usage/export", None, EVERYONE),
        case(M::GET, "/api/admin/users", None, ADMINS),
        case(
            M::POST,
            "/api/admin/users",
            Some(json!({"username": "{fresh_name}"})),
            ADMINS,
        ),
        case(M::GET, "/api/admin/users/{user_b}", None, ADMINS),
        case(
            M::PATCH,
            "/api/admin/users/{user_b}",
            Some(json!({"rpm_limit": 100})),
            ADMINS,
        ),
        case(M::DELETE, "/api/admin/users/{fresh_user}", None, ADMINS),
        case(
            M::POST,
            "/api/admin/users/{user_b}/balance",
            Some(json!({"amount_usd": "0.01", "reason": "matrix"})),
            ADMINS,
        ),
        case(
            M::POST,
            "/api/admin/users/{fresh_user}/password",
            Some(json!({"password": "matrix-password"})),
            ADMINS,
        ),
        case(M::GET, "/api/admin/users/{user_b}/keys", None, ADMINS),
        case(M::GET, "/api/admin/users/{user_b}/ledger", None, ADMINS),
        case(M::GET, "/api/admin/keys", None, ADMINS),
        case(
            M::PATCH,
            "/api/admin/keys/{b_key}",
            Some(json!({"name": "renamed by an admin"})),
            ADMINS,
        ),
        case(M::DELETE, "/api/admin/keys/{fresh_b_key}", None, ADMINS),
        case(
            M::POST,
            "/api/admin/redemptions",
            Some(json!({"count": 1, "amount_usd": "0.01"})),
            ADMINS,
        ),
        case(M::GET, "/api/admin/redemptions", None, ADMINS),
        case(
            M::DELETE,
            "/api/admin/redemptions/{fresh_code_id}",
            None,
            ADMINS,
        ),
        case(M::GET, "/api/admin/channels", None, ADMINS),
        case(
            M::POST,
            "/api/admin/channels",
            Some(
                json!({"name": "{fresh_name}", "type": "openai", "base_url": "http://127.0.0.1:9"}),
            ),
            ADMINS,
        ),
        case(M::GET, "/api/admin/channels/{channel}", None, ADMINS),
        case(
            M::PATCH,
            "/api/admin/channels/{channel}",
            Some(json!({"priority": 0})),
            ADMINS,
        ),
        case(
            M::DELETE,
            "/api/admin/channels/{fresh_channel}",
            None,
            ADMINS,
        ),
        case(
            M::GET,
            "/api/admin/channels/{channel}/upstream-models",
            None,
            ADMINS,
        ),
        case(
            M::POST,
            "/api/admin/channels/{channel}/import-models",
            Some(json!({"models": ["mock-gpt"]})),
            ADMINS,
        ),
        case(M::GET, "/api/admin/channels/{channel}/health", None, ADMINS),
        case(
            M::POST,
            "/api/admin/channels/{channel}/test",
            Some(json!({"model": "mock-gpt"})),
            ADMINS,
        ),
        case(M::POST, "/api/admin/channels/check", None, ADMINS),
        case(M::GET, "/api/admin/catalogue", None, ADMINS),
        case(M::GET, "/api/admin/models", None, ADMINS),
        case(
            M::POST,
            "/api/admin/models",
            Some(
                json!({"id": "{fresh_name}", "provider": "P", "input_usd_per_mtok": "1", "output_usd_per_mtok": "1"}),
            ),
            ADMINS,
        ),
        case(M::GET, "/api/admin/models/export", None, ADMINS),
        case(
            M::POST,
            "/api/admin/models/import",
            Some(json!({"models": [model.clone()]})),
            ADMINS,
        ),
        case(M::GET, "/api/admin/models/mock-gpt", None, ADMINS),
        case(M::PUT, "/api/admin/models/mock-gpt", Some(model), ADMINS),
        case(M::DELETE, "/api/admin/models/{fresh_model}", None, ADMINS),
        case(M::GET, "/api/admin/usage", None, ADMINS),
        case(M::GET, "/api/admin/usage/summary", None, ADMINS),
        case(M::GET, "/api/admin/usage/export", None, ADMINS),
        case(M::GET, "/api/admin/audit", None, ROOT),
        case(M::GET, "/api/admin/settings", None, ADMINS),
        case(M::GET, "/api/admin/mail", None, ADMINS),
        case(M::DELETE, "/api/admin/mail", None, ADMINS),
        case(
            M::PATCH,
            "/api/admin/settings",
            Some(json!({"anonymous_chat_rpm": 7})),
            ADMINS,
        ),
        case(
            M::POST,
            "/api/admin/tokens",
            Some(json!({"name": "matrix"})),
            ROOT,
        ),
        case(M::GET, "/api/admin/tokens", None, ROOT),
        case(M::DELETE, "/api/admin/tokens/{fresh_token}", None, ROOT),
        case(M::GET, "/v1/dashboard/billing/subscription", None, KEY),
        case(M::GET, "/v1/dashboard/billing/usage", None, KEY),
        case(M::GET, "/api/usage/key", None, KEY),
    ]
}

/// Routes deliberately outside the matrix, each with its own test below: the public
/// ones (sign-up, login) and those that end or change the caller's own credentials.
const TESTED_ELSEWHERE: &[(&str, &str)] = &[
    ("post", "/api/auth/signup"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/logout"),
    ("put", "/api/auth/password"),
    // Its body takes a numeric channel id, which the matrix's text placeholders cannot
    // write; it/catalogue.rs checks that only admins may call it.
    ("post", "/api/admin/catalogue/attach"),
    ("post", "/api/auth/password-reset"),
    ("post", "/api/auth/password-reset/confirm"),
    // Need working mail (an SMTP sink): it/accounts_mail.rs checks who may call them.
    ("put", "/api/admin/mail"),
    ("post", "/api/admin/mail/test"),
    ("post", "/api/auth/verify-email"),
    ("post", "/api/me/email/verification"),
];

impl World {
    fn caller(&self, who: Who) -> &Caller {
        match who {
            Who::Anonymous => &self.anonymous,
            Who::UserA => &self.a,
            Who::UserB => &self.b,
            Who::Admin => &self.admin,
            Who::Root => &self.root,
            Who::ApiKey => &self.api_key,
        }
    }

    /// Fills one placeholder, creating a fresh resource (as root or A) when asked for.
    async fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        let unique = || uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let replacements: Vec<(&str, String)> = vec![
            ("{a_key}", self.a_key_id.to_string()),
            ("{b_key}", self.b_key_id.to_string()),
            ("{user_b}", self.b.user_id.unwrap().to_string()),
            ("{channel}", self.mock_channel_id.to_string()),
        ];
        for (name, value) in replacements {
            out = out.replace(name, &value);
        }
        if out.contains("{fresh_name}") {
            out = out.replace("{fresh_name}", &format!("m{}", unique()));
        }
        if out.contains("{fresh_a_key}") {
            let key = self
                .a
                .ok(Method::POST, "/api/me/keys", Some(json!({})))
                .await;
            out = out.replace("{fresh_a_key}", &key["key"]["id"].to_string());
        }
        if out.contains("{fresh_b_key}") {
            let key = self
                .b
                .ok(Method::POST, "/api/me/keys", Some(json!({})))
                .await;
            out = out.replace("{fresh_b_key}", &key["key"]["id"].to_string());
        }
        if out.contains("{fresh_user}") {
            let user = self
                .root
                .ok(
                    Method::POST,
                    "/api/admin/users",
                    Some(json!({"username": format!("u{}", unique())})),
                )
                .await;
            out = out.replace("{fresh_user}", &user["id"].to_string());
        }
        if out.contains("{fresh_code}") || out.contains("{fresh_code_id}") {
            let codes = self
                .root
                .ok(
                    Method::POST,
                    "/api/admin/redemptions",
                    Some(json!({"count": 1, "amount_usd": "0.01"})),
                )
                .await;
            out = out.replace("{fresh_code_id}", &codes["codes"][0]["id"].to_string());
            out = out.replace("{fresh_code}", codes["codes"][0]["code"].as_str().unwrap());
        }
        if out.contains("{fresh_channel}") {
            let body = json!({"name": format!("c{}", unique()), "base_url": "http://127.0.0.1:9"});
            let channel = self
                .root
                .ok(Method::POST, "/api/admin/channels", Some(body))
                .await;
            out = out.replace("{fresh_channel}", &channel["id"].to_string());
        }
        if out.contains("{fresh_token}") {
            let token = self
                .root
                .ok(
                    Method::POST,
                    "/api/admin/tokens",
                    Some(json!({"name": "doomed"})),
                )
                .await;
            out = out.replace("{fresh_token}", &token["token"]["id"].to_string());
        }
        if out.contains("{fresh_model}") {
            let id = format!("m{}", unique());
            let body = json!({"id": id, "provider": "P", "input_usd_per_mtok": "1", "output_usd_per_mtok": "1"});
            self.root
                .ok(Method::POST, "/api/admin/models", Some(body))
                .await;
            out = out.replace("{fresh_model}", &id);
        }
        out
    }
}

#[tokio::test]
async fn authorization_matrix_every_endpoint_every_caller() {
    let w = world(Backend::Sqlite).await;
    for case in matrix() {
        for who in ALL {
            let path = w.fill(case.path).await;
            let body = match &case.body {
                Some(body) => Some(serde_json::from_str(&w.fill(&body.to_string()).await).unwrap()),
                None => None,
            };
            let (status, value) = w.caller(who).call(case.method.clone(), &path, body).await;
            let allowed = case.allowed.contains(&who);
            let label = format!("{who:?} {} {}", case.method, case.path);
            if allowed {
                assert!(
                    status.is_success(),
                    "{label} should succeed: {status} {value}"
                );
                continue;
            }
            assert!(
                matches!(status.as_u16(), 401 | 403 | 404),
                "{label} should be refused: {status} {value}"
            );
            // Every refusal has the documented shape.
            assert!(
                value["error"]["code"].is_string() && value["error"]["message"].is_string(),
                "{label}: {value}"
            );
            match who {
                Who::Anonymous => assert_eq!(status, 401, "{label}"),
                // A key never authenticates a management route (and a session never a key route).
                Who::ApiKey => assert_eq!(status, 401, "{label}: {value}"),
                // Another user's key looks exactly like a key that does not exist.
                Who::UserB | Who::Admin | Who::Root if case.allowed == ONLY_A => {
                    assert_eq!(status, 404, "{label}")
                }
                _ if case.allowed == KEY => assert_eq!(status, 401, "{label}"),
                _ => assert_eq!(status, 403, "{label}: {value}"),
            }
        }
    }
    // The matrix and the dedicated tests cover every route the document lists.
    let doc = w.anonymous.ok(Method::GET, "/api/openapi.json", None).await;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let mut covered: BTreeSet<(String, String)> = TESTED_ELSEWHERE
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    for case in matrix() {
        let path = case
            .path
            .replace("{a_key}", "{id}")
            .replace("{fresh_a_key}", "{id}")
            .replace("{b_key}", "{id}")
            .replace("{fresh_b_key}", "{id}")
            .replace("{user_b}", "{id}")
            .replace("{fresh_user}", "{id}")
            .replace("{fresh_code_id}", "{id}")
            .replace("{channel}", "{id}")
            .replace("{fresh_channel}", "{id}")
            .replace("{fresh_model}", "{id}")
            .replace("{fresh_token}", "{id}")
            .replace("/mock-gpt", "/{id}");
        covered.insert((case.method.as_str().to_lowercase(), path));
    }
    assert_eq!(documented, covered);
    w.h.shutdown().await;
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_complete() {
    let h = Harness::start(Backend::Sqlite).await;
    let anonymous = Caller::anonymous(&h.base);
    let doc = anonymous.ok(Method::GET, "/api/openapi.json", None).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    // Every $ref resolves, and every operation is well formed.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {target}"));
        assert!(schemas.contains_key(name), "dangling $ref {target}");
    }
    let mut operation_ids = BTreeSet::new();
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            count += 1;
            assert!(
                ["get", "post", "put", "patch", "delete"].contains(&method.as_str()),
                "{method} {path}"
            );
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                operation_ids.insert(format!("{path}:{id}")),
                "{method} {path}"
            );
            for requirement in operation["security"].as_array().into_iter().flatten() {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(
                        schemes.contains_key(scheme),
                        "{method} {path}: unknown scheme {scheme}"
                    );
                }
            }
            // Path parameters are declared.
            if path.contains("{id}") {
                let params = operation["parameters"].as_array().unwrap();
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == "id" && p["in"] == "path"),
                    "{method} {path}"
                );
            }
        }
    }
    assert!(count >= 49, "{count} operations");
    // Unknown management paths answer in the management shape too.
    let (status, body) = anonymous
        .call(Method::GET, "/api/no/such/route", None)
        .await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    // An undocumented route would not be served: every documented path answers (401 at
    // worst), never 404/405.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, _) = anonymous
                .call(method.clone(), &path.replace("{id}", "1"), None)
                .await;
            assert!(
                ![404, 405].contains(&status.as_u16()),
                "{method} {path}: {status}"
            );
        }
    }
    h.shutdown().await;
}

#[tokio::test]
async fn sessions_need_csrf_for_changes_and_logout_ends_them() {
    let h = Harness::start(Backend::Sqlite).await;
    let a = Caller::session(&h.base, "/api/auth/signup", "carol", "carol-password").await;
    let no_csrf = Caller {
        csrf: None,
        ..a.clone()
    };
    let (status, body) = no_csrf
        .call(Method::POST, "/api/me/keys", Some(json!({})))
        .await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    let wrong = Caller {
        csrf: Some("x".repeat(43)),
        ..a.clone()
    };
    assert_eq!(
        wrong
            .call(Method::POST, "/api/me/keys", Some(json!({})))
            .await
            .0,
        403
    );
    // Reads need no token; the session endpoint hands the token to a reloaded page.
    let session = no_csrf.ok(Method::GET, "/api/auth/session", None).await;
    assert_eq!(session["csrf_token"].as_str(), a.csrf.as_deref());
    a.ok(Method::POST, "/api/me/keys", Some(json!({}))).await;

    // The cookie is HttpOnly and SameSite.
    let response = Caller::anonymous(&h.base)
        .send(
            Method::POST,
            "/api/auth/login",
            Some(json!({"username": "carol", "password": "carol-password"})),
        )
        .await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    // Password change: the old password stops working, and so do other sessions.
    let elsewhere = Caller::session(&h.base, "/api/auth/login", "carol", "carol-password").await;
    assert_eq!(elsewhere.call(Method::GET, "/api/me", None).await.0, 200);
    let change =
        json!({"current_password": "carol-password", "new_password": "carol-new-password"});
    assert_eq!(
        a.call(
            Method::PUT,
            "/api/auth/password",
            Some(json!({"current_password": "nope-nope", "new_password": "whatever-1"}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        a.call(Method::PUT, "/api/auth/password", Some(change))
            .await
            .0,
        204
    );
    assert_eq!(elsewhere.call(Method::GET, "/api/me", None).await.0, 401);
    assert_eq!(a.call(Method::GET, "/api/me", None).await.0, 200);
    let old = json!({"username": "carol", "password": "carol-password"});
    assert_eq!(
        Caller::anonymous(&h.base)
            .call(Method::POST, "/api/auth/login", Some(old))
            .await
            .0,
        401
    );

    assert_eq!(a.call(Method::POST, "/api/auth/logout", None).await.0, 204);
    assert_eq!(a.call(Method::GET, "/api/me", None).await.0, 401);
    h.shutdown().await;
}

#[tokio::test]
async fn login_attempts_are_throttled_per_account() {
    let h = Harness::start(Backend::Sqlite).await;
    Caller::session(&h.base, "/api/auth/signup", "dave", "dave-password").await;
    let anonymous = Caller::anonymous(&h.base);
    let wrong = json!({"username": "dave", "password": "wrong-password"});
    for _ in 0..5 {
        let (status, body) = anonymous
            .call(Method::POST, "/api/auth/login", Some(wrong.clone()))
            .await;
        assert_eq!(
            (status.as_u16(), body["error"]["code"].as_str()),
            (401, Some("unauthenticated"))
        );
    }
    // The sixth attempt is refused even with the right password, and says when to retry.
    let right = json!({"username": "dave", "password": "dave-password"});
    let response = anonymous
        .send(Method::POST, "/api/auth/login", Some(right))
        .await;
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    h.shutdown().await;
}

#[tokio::test]
async fn sign_up_can_be_closed() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.accounts.signup = Some(tokenhub::config::SignupMode::Closed);
    })
    .await;
    let body = json!({"username": "erin", "password": "erin-password"});
    let (status, value) = Caller::anonymous(&h.base)
        .call(Method::POST, "/api/auth/signup", Some(body))
        .await;
    assert_eq!(
        (status.as_u16(), value["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn settings_saved_by_an_admin_override_the_configuration() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.accounts.signup = Some(tokenhub::config::SignupMode::Closed);
    })
    .await;
    let root = Caller::session(&h.base, "/api/auth/login", "root", "root-password").await;
    let current = root.ok(Method::GET, "/api/admin/settings", None).await;
    assert_eq!(
        current,
        json!({"signup": "closed", "trial_credit_usd": "1", "anonymous_chat": true,
            "anonymous_chat_rpm": 5, "support_contact": "", "email_verification": false})
    );
    for (bad, field) in [
        (json!({"signup": "ajar"}), "signup"),
        (json!({"trial_credit_usd": "-2"}), "trial_credit_usd"),
        (json!({"anonymous_chat_rpm": 0}), "anonymous_chat_rpm"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let (status, value) = root
            .call(Method::PATCH, "/api/admin/settings", Some(bad))
            .await;
        assert_eq!(status.as_u16(), 400, "{value}");
        assert!(value["error"]["message"].as_str().unwrap().contains(field));
    }
    let change = json!({"signup": "open", "trial_credit_usd": "0.25"});
    let saved = root
        .ok(Method::PATCH, "/api/admin/settings", Some(change))
        .await;
    assert_eq!(
        (saved["signup"].as_str(), saved["trial_credit_usd"].as_str()),
        (Some("open"), Some("0.25"))
    );
    let erin = Caller::session(&h.base, "/api/auth/signup", "erin", "erin-password").await;
    let me = erin.ok(Method::GET, "/api/me", None).await;
    assert_eq!(me["balance_usd"], "0.25");
    let audit = root.ok(Method::GET, "/api/admin/audit", None).await;
    assert_eq!(audit["data"][0]["action"], "settings.update");
    h.shutdown().await;
}

#[tokio::test]
async fn keys_are_managed_by_their_owner_and_take_effect_on_the_relay() {
    let w = world(Backend::Sqlite).await;
    let chat = |key: String| {
        let h = &w.h;
        async move {
            h.chat(
                &key,
                json!({"model": "mock-gpt", "messages": user_says("hi")}),
            )
            .await
            .status()
        }
    };
    let created =
        w.a.ok(
            Method::POST,
            "/api/me/keys",
            Some(json!({
                "name": "laptop", "quota_usd": "0.50", "allowed_models": ["mock-gpt"],
                "allowed_ips": ["127.0.0.1", "10.0.0.0/8"], "rpm_limit": 60, "tpm_limit": 10000,
                "expires_at": 4_102_444_800_000_i64,
            })),
        )
        .await;
    let secret = created["secret"].as_str().unwrap().to_string();
    let id = created["key"]["id"].as_i64().unwrap();
    let view = &created["key"];
    assert_eq!(
        view["prefix"].as_str().unwrap(),
        format!("{}…", &secret[..7])
    );
    assert_eq!(
        (
            view["quota_usd"].as_str(),
            view["rpm_limit"].as_i64(),
            view["tpm_limit"].as_i64()
        ),
        (Some("0.5"), Some(60), Some(10000))
    );
    assert_eq!(view["allowed_ips"], json!(["127.0.0.1", "10.0.0.0/8"]));
    // The list never shows the secret.
    let list = w.a.ok(Method::GET, "/api/me/keys", None).await;
    assert!(!list.to_string().contains(&secret));
    w.h.reload().await;
    assert_eq!(chat(secret.clone()).await, 200);

    let path = format!("/api/me/keys/{id}");
    let disabled =
        w.a.ok(Method::PATCH, &path, Some(json!({"enabled": false})))
            .await;
    assert_eq!(disabled["status"], "disabled");
    w.h.reload().await;
    assert_eq!(chat(secret.clone()).await, 401);
    w.a.ok(
        Method::PATCH,
        &path,
        Some(json!({"enabled": true, "rpm_limit": null, "allowed_ips": null})),
    )
    .await;
    let view = w.a.ok(Method::GET, &path, None).await;
    assert_eq!(
        (
            view["rpm_limit"].clone(),
            view["allowed_ips"].clone(),
            view["tpm_limit"].as_i64()
        ),
        (Value::Null, Value::Null, Some(10000))
    );
    w.h.reload().await;
    assert_eq!(chat(secret.clone()).await, 200);

    // Validation at the edges.
    for bad in [
        json!({"rpm_limit": 0}),
        json!({"allowed_ips": ["10.0.0.0/33"]}),
        json!({"quota_usd": "-1"}),
        json!({"quota_usd": "0.0000000001"}),
    ] {
        let (status, body) = w.a.call(Method::PATCH, &path, Some(bad.clone())).await;
        assert_eq!(
            (status.as_u16(), body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }

    // IDOR: B can neither see nor change nor delete A's key.
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let (status, _) =
            w.b.call(method.clone(), &path, Some(json!({"enabled": false})))
                .await;
        assert_eq!(status, 404, "{method}");
    }
    assert!(
        !w.b.ok(Method::GET, "/api/me/keys", None)
            .await
            .to_string()
            .contains(&format!("\"id\":{id},"))
    );

    // Delete = revoke: the key stops working; its usage stays.
    assert_eq!(w.a.call(Method::DELETE, &path, None).await.0, 204);
    w.h.reload().await;
    assert_eq!(chat(secret.clone()).await, 401);
    w.h.gateway().writer.flush().await;
    let usage =
        w.a.ok(Method::GET, &format!("/api/me/usage?key_id={id}"), None)
            .await;
    assert_eq!(usage["total"], 2);
    assert_eq!(w.a.call(Method::GET, &path, None).await.0, 404);
    let _ = w.b_key_id;
    w.h.shutdown().await;
}

#[tokio::test]
async fn limits_are_stored_and_inherited_in_the_snapshot_data() {
    let w = world(Backend::Sqlite).await;
    let b_id = w.b.user_id.unwrap();
    let user = w
        .admin
        .ok(
            Method::PATCH,
            &format!("/api/admin/users/{b_id}"),
            Some(json!({"rpm_limit": 30, "tpm_limit": 5000})),
        )
        .await;
    assert_eq!(
        (user["rpm_limit"].as_i64(), user["tpm_limit"].as_i64()),
        (Some(30), Some(5000))
    );
    let store = &w.h.gateway().store;
    let limits = store.user_limits(b_id).await.unwrap();
    assert_eq!((limits.rpm, limits.tpm), (Some(30), Some(5000)));
    let key = store.key_limits(w.b_key_id).await.unwrap();
    assert_eq!((key.rpm, key.tpm, key.allowed_ips), (None, None, None));
    // Clearing with null.
    let user = w
        .admin
        .ok(
            Method::PATCH,
            &format!("/api/admin/users/{b_id}"),
            Some(json!({"rpm_limit": null})),
        )
        .await;
    assert_eq!(
        (user["rpm_limit"].clone(), user["tpm_limit"].as_i64()),
        (Value::Null, Some(5000))
    );
    w.h.shutdown().await;
}

#[tokio::test]
async fn role_rules_protect_root_and_users_see_only_themselves() {
    let w = world(Backend::Sqlite).await;
    let root_id = 1;
    // An admin cannot demote, disable or delete root, nor grant root.
    let path = format!("/api/admin/users/{root_id}");
    assert_eq!(
        w.admin
            .call(Method::PATCH, &path, Some(json!({"role": "user"})))
            .await
            .0,
        403
    );
    assert_eq!(
        w.admin
            .call(Method::PATCH, &path, Some(json!({"status": "disabled"})))
            .await
            .0,
        403
    );
    assert_eq!(w.admin.call(Method::DELETE, &path, None).await.0, 403);
    let b_path = format!("/api/admin/users/{}", w.b.user_id.unwrap());
    assert_eq!(
        w.admin
            .call(Method::PATCH, &b_path, Some(json!({"role": "root"})))
            .await
            .0,
        403
    );
    // Root cannot demote the last root either (nor delete itself).
    assert_eq!(
        w.root
            .call(Method::PATCH, &path, Some(json!({"role": "admin"})))
            .await
            .0,
        409
    );
    assert_eq!(w.root.call(Method::DELETE, &path, None).await.0, 409);

    // Usage and balance: each user sees their own only.
    w.h.chat(
        w.api_key.bearer.as_deref().unwrap(),
        json!({"model": "mock-gpt", "messages": user_says("mine")}),
    )
    .await;
    w.h.gateway().writer.flush().await;
    assert_eq!(w.a.ok(Method::GET, "/api/me/usage", None).await["total"], 1);
    let b_usage =
        w.b.ok(
            Method::GET,
            &format!("/api/me/usage?user_id={}", w.a.user_id.unwrap()),
            None,
        )
        .await;
    assert_eq!(b_usage["total"], 0, "user_id is ignored on /api/me/usage");
    assert_eq!(
        w.b.ok(
            Method::GET,
            &format!("/api/me/usage?key_id={}", w.a_key_id),
            None
        )
        .await["total"],
        0
    );
    assert_eq!(
        w.admin.ok(Method::GET, "/api/admin/usage", None).await["total"],
        1
    );
    assert_eq!(
        w.b.ok(Method::GET, "/api/me", None).await["balance_usd"],
        "1"
    );

    // A disabled user is logged out and its keys stop; deletion revokes keys, keeps usage.
    let a_path = format!("/api/admin/users/{}", w.a.user_id.unwrap());
    w.admin
        .ok(Method::PATCH, &a_path, Some(json!({"status": "disabled"})))
        .await;
    assert_eq!(w.a.call(Method::GET, "/api/me", None).await.0, 401);
    assert_eq!(w.admin.call(Method::DELETE, &a_path, None).await.0, 204);
    let keys =
        w.h.gateway()
            .store
            .keys_of_user(w.a.user_id.unwrap())
            .await
            .unwrap();
    assert!(keys.iter().all(|k| k.status == "revoked"));
    assert_eq!(
        w.admin.ok(Method::GET, "/api/admin/usage", None).await["total"],
        1
    );
    w.h.shutdown().await;
}

#[tokio::test]
async fn audit_log_records_admin_actions_with_before_and_after() {
    let w = world(Backend::Sqlite).await;
    let b_path = format!("/api/admin/users/{}", w.b.user_id.unwrap());
    w.admin
        .ok(Method::PATCH, &b_path, Some(json!({"tpm_limit": 77})))
        .await;
    let audit = w.root.ok(Method::GET, "/api/admin/audit", None).await;
    let entry = &audit["data"][0];
    assert_eq!(
        (entry["action"].as_str(), entry["actor_name"].as_str()),
        (Some("user.update"), Some("ada"))
    );
    assert_eq!(entry["before"]["tpm_limit"], Value::Null);
    assert_eq!(entry["after"]["tpm_limit"], 77);
    assert!(entry["created_at"].as_i64().unwrap() > 1_700_000_000_000);
    // An admin can disable any user's key; the owner sees it, the log records it.
    let key_path = format!("/api/admin/keys/{}", w.b_key_id);
    let disabled = w
        .admin
        .ok(Method::PATCH, &key_path, Some(json!({"enabled": false})))
        .await;
    assert_eq!(disabled["status"], "disabled");
    let own =
        w.b.ok(Method::GET, &format!("/api/me/keys/{}", w.b_key_id), None)
            .await;
    assert_eq!(own["status"], "disabled");
    let audit = w.root.ok(Method::GET, "/api/admin/audit", None).await;
    assert_eq!(audit["data"][0]["action"], "key.update");
    assert_eq!(
        (
            audit["data"][0]["before"]["status"].as_str(),
            audit["data"][0]["after"]["status"].as_str()
        ),
        (Some("active"), Some("disabled"))
    );
    // Channel secrets never reach the log.
    let secret = "sk-upstream-secret-0123456789";
    w.admin
        .ok(
            Method::POST,
            "/api/admin/channels",
            Some(json!({"name": "audited", "base_url": "https://example.com", "api_key": secret})),
        )
        .await;
    let audit = w.root.ok(Method::GET, "/api/admin/audit", None).await;
    assert_eq!(audit["data"][0]["action"], "channel.create");
    assert!(!audit.to_string().contains(secret));
    w.h.shutdown().await;
}

#[tokio::test]
async fn channels_and_models_are_validated_masked_and_hot_reloaded() {
    let w = world(Backend::Sqlite).await;
    let mock = w.h.mock.base_url();
    let secret = "sk-upstream-secret-abcd";
    for bad in [
        json!({"name": "x", "base_url": "ftp://example.com"}),
        json!({"name": "x", "base_url": "http://h", "models": ["a", "a"]}),
        json!({"name": "x", "base_url": "http://h", "weight": -1}),
        json!({"name": "mock", "base_url": "http://h"}),
    ] {
        let (status, body) = w
            .admin
            .call(Method::POST, "/api/admin/channels", Some(bad.clone()))
            .await;
        assert!(
            matches!(status.as_u16(), 400 | 409),
            "{bad}: {status} {body}"
        );
    }
    let bad_price = json!({"id": "neg", "provider": "P", "input_usd_per_mtok": "-1", "output_usd_per_mtok": "1"});
    assert_eq!(
        w.admin
            .call(Method::POST, "/api/admin/models", Some(bad_price))
            .await
            .0,
        400
    );
    let dup = json!({"id": "mock-gpt", "provider": "P", "input_usd_per_mtok": "1", "output_usd_per_mtok": "1"});
    assert_eq!(
        w.admin
            .call(Method::POST, "/api/admin/models", Some(dup))
            .await
            .0,
        409
    );

    let model = json!({"id": "hot-model", "provider": "Mock", "input_usd_per_mtok": "1", "output_usd_per_mtok": "2"});
    w.admin
        .ok(Method::POST, "/api/admin/models", Some(model))
        .await;
    let channel = w.admin.ok(Method::POST, "/api/admin/channels", Some(json!({
        "name": "hot", "base_url": mock, "api_key": secret, "models": ["hot-model"], "model_map": {"hot-model": "mock-gpt"}
    }))).await;
    assert_eq!(
        (
            channel["api_key_set"].as_bool(),
            channel["api_key_masked"].as_str()
        ),
        (Some(true), Some("sk-…abcd"))
    );
    let key = w.api_key.bearer.clone().unwrap();
    let request = json!({"model": "hot-model", "messages": user_says("hot")});
    // The running gateway serves it after its next reload, without a restart.
    let mut served = false;
    for _ in 0..100 {
        if w.h.chat(&key, request.clone()).await.status() == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(served, "the new channel was never served");
    // An edit without api_key keeps it; the secret is never returned by any listing.
    let id = channel["id"].as_i64().unwrap();
    let edited = w
        .admin
        .ok(
            Method::PATCH,
            &format!("/api/admin/channels/{id}"),
            Some(json!({"priority": 3})),
        )
        .await;
    assert_eq!(
        (edited["priority"].as_i64(), edited["api_key_set"].as_bool()),
        (Some(3), Some(true))
    );
    for path in [
        "/api/admin/channels".to_string(),
        format!("/api/admin/channels/{id}"),
    ] {
        assert!(
            !w.admin
                .ok(Method::GET, &path, None)
                .await
                .to_string()
                .contains(secret)
        );
    }
    assert_eq!(
        w.admin
            .call(Method::DELETE, &format!("/api/admin/channels/{id}"), None)
            .await
            .0,
        204
    );
    w.h.reload().await;
    assert_eq!(
        w.h.chat(&key, request).await.status(),
        503,
        "no channel serves it any more"
    );
    w.h.shutdown().await;
}

#[tokio::test]
async fn channel_health_is_visible_and_the_test_action_reports_latency() {
    let w = world(Backend::Sqlite).await;
    let channel = w.mock_channel_id;
    let tested = w
        .admin
        .ok(
            Method::POST,
            &format!("/api/admin/channels/{channel}/test"),
            Some(json!({})),
        )
        .await;
    assert_eq!(tested["ok"], true, "{tested}");
    assert!(tested["latency_ms"].as_u64().is_some());
    let health = w
        .admin
        .ok(
            Method::GET,
            &format!("/api/admin/channels/{channel}/health"),
            None,
        )
        .await;
    assert_eq!(health["state"], "closed");
    assert!(health["successes"].as_u64().unwrap() >= 1);
    assert!(health["ewma_latency_ms"].as_f64().is_some());
    let (status, _) = w
        .admin
        .call(Method::GET, "/api/admin/channels/999999/health", None)
        .await;
    assert_eq!(status, 404);
    w.h.shutdown().await;
}

#[tokio::test]
async fn upstream_models_are_imported_and_refused_until_priced() {
    let w = world(Backend::Sqlite).await;
    let channel = w.mock_channel_id;
    let listed = w
        .admin
        .ok(
            Method::GET,
            &format!("/api/admin/channels/{channel}/upstream-models"),
            None,
        )
        .await;
    assert_eq!(
        listed["data"],
        json!(["mock-embed", "mock-gpt", "mock-mini"])
    );
    let import = format!("/api/admin/channels/{channel}/import-models");
    let (status, _) = w
        .admin
        .call(
            Method::POST,
            &import,
            Some(json!({"models": ["not-offered"]})),
        )
        .await;
    assert_eq!(status, 400);
    let report = w
        .admin
        .ok(
            Method::POST,
            &import,
            Some(json!({"models": ["mock-mini"]})),
        )
        .await;
    assert_eq!(
        (report["created"].clone(), report["unpriced"].clone()),
        (json!(["mock-mini"]), json!(["mock-mini"]))
    );
    assert_eq!(report["added_to_channel"], json!(["mock-mini"]));
    let model = w
        .admin
        .ok(Method::GET, "/api/admin/models/mock-mini", None)
        .await;
    assert_eq!(model["priced"], false);
    w.h.reload().await;
    let key = w.api_key.bearer.clone().unwrap();
    let request = json!({"model": "mock-mini", "messages": user_says("cheap?")});
    assert_eq!(
        w.h.chat(&key, request.clone()).await.status(),
        404,
        "an unpriced model is never billed at a default"
    );
    let priced = json!({"id": "mock-mini", "provider": "Mock", "input_usd_per_mtok": "0.5", "output_usd_per_mtok": "1"});
    assert_eq!(
        w.admin
            .ok(Method::PUT, "/api/admin/models/mock-mini", Some(priced))
            .await["priced"],
        true
    );
    w.h.reload().await;
    assert_eq!(w.h.chat(&key, request).await.status(), 200);

    // Bulk export and import, JSON and CSV.
    let exported = w
        .admin
        .ok(Method::GET, "/api/admin/models/export", None)
        .await;
    assert!(
        exported["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "mock-mini")
    );
    let counts = w
        .admin
        .ok(Method::POST, "/api/admin/models/import", Some(exported))
        .await;
    assert_eq!(counts["added"], 0);
    let csv = w
        .admin
        .send(Method::GET, "/api/admin/models/export?format=csv", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("id,provider,context,input_usd_per_mtok"),
        "{csv}"
    );
    let new_csv = "id,provider,input_usd_per_mtok,output_usd_per_mtok\r\n\"bulk,1\",Bulk,0.1,0.2\r\nbulk-2,Bulk,0,0\r\n";
    let response = w
        .admin
        .http
        .post(format!("{}/api/admin/models/import", w.h.base))
        .header("X-CSRF-Token", w.admin.csrf.clone().unwrap())
        .header("Content-Type", "text/csv")
        .body(new_csv)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let counts: Value = response.json().await.unwrap();
    assert_eq!(
        (counts["added"].as_u64(), counts["updated"].as_u64()),
        (Some(2), Some(0))
    );
    // Ids with a slash travel percent-encoded.
    let slashed = json!({"id": "org/model-x", "provider": "Org", "input_usd_per_mtok": "1", "output_usd_per_mtok": "1"});
    w.admin
        .ok(Method::POST, "/api/admin/models", Some(slashed))
        .await;
    assert_eq!(
        w.admin
            .ok(Method::GET, "/api/admin/models/org%2Fmodel-x", None)
            .await["id"],
        "org/model-x"
    );
    assert_eq!(
        w.admin
            .call(Method::DELETE, "/api/admin/models/org%2Fmodel-x", None)
            .await
            .0,
        204
    );
    let bulk = w
        .admin
        .ok(Method::GET, "/api/admin/models/bulk%2C1", None)
        .await;
    assert_eq!(
        (
            bulk["input_usd_per_mtok"].as_str(),
            bulk["output_usd_per_mtok"].as_str()
        ),
        (Some("0.1"), Some("0.2"))
    );
    w.h.shutdown().await;
}

/// The cache-write price is one more optional price: set, read back, cleared (null = the
/// input price), refused when negative, exported and imported in both formats.
#[tokio::test]
async fn cache_write_prices_travel_through_every_model_route() {
    let w = world(Backend::Sqlite).await;
    let path = "/api/admin/models/cached-model";
    let priced = json!({"id": "cached-model", "provider": "Mock", "input_usd_per_mtok": "3",
        "output_usd_per_mtok": "15", "cached_input_usd_per_mtok": "0.30",
        "cache_write_usd_per_mtok": "3.75"});
    let created = w
        .admin
        .ok(Method::POST, "/api/admin/models", Some(priced.clone()))
        .await;
    let prices = |m: &Value| {
        (
            m["cached_input_usd_per_mtok"].clone(),
            m["cache_write_usd_per_mtok"].clone(),
        )
    };
    assert_eq!(prices(&created), (json!("0.3"), json!("3.75")));
    assert_eq!(
        prices(&w.admin.ok(Method::GET, path, None).await),
        prices(&created)
    );
    let listed = w.admin.ok(Method::GET, "/api/admin/models", None).await;
    let in_list = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "cached-model")
        .unwrap()
        .clone();
    assert_eq!(prices(&in_list), prices(&created));

    let unset = json!({"id": "cached-model", "provider": "Mock", "input_usd_per_mtok": "3",
        "output_usd_per_mtok": "15"});
    let cleared = w.admin.ok(Method::PUT, path, Some(unset)).await;
    assert_eq!(prices(&cleared), (Value::Null, Value::Null));
    let mut negative = priced.clone();
    negative["cache_write_usd_per_mtok"] = json!("-3.75");
    let (status, body) = w.admin.call(Method::PUT, path, Some(negative)).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let mut too_precise = priced.clone();
    too_precise["cache_write_usd_per_mtok"] = json!("3.7500000001");
    let (status, body) = w.admin.call(Method::PUT, path, Some(too_precise)).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("cache_write_usd_per_mtok: "),
        "{body}"
    );
    w.admin.ok(Method::PUT, path, Some(priced)).await;

    let exported = w
        .admin
        .ok(Method::GET, "/api/admin/models/export", None)
        .await;
    let entry = exported["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "cached-model")
        .unwrap();
    assert_eq!(entry["cache_write_usd_per_mtok"], "3.75");
    let csv = w
        .admin
        .send(Method::GET, "/api/admin/models/export?format=csv", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("id,provider,context,input_usd_per_mtok,output_usd_per_mtok,cached_input_usd_per_mtok,cache_write_usd_per_mtok,enabled,"),
        "{csv}"
    );
    assert!(
        csv.contains("cached-model,Mock,0,3,15,0.3,3.75,true,"),
        "{csv}"
    );

    let new_csv = "id,provider,input_usd_per_mtok,output_usd_per_mtok,cache_write_usd_per_mtok\r\ncached-model,Mock,3,15,4.5\r\n";
    let response = w
        .admin
        .http
        .post(format!("{}/api/admin/models/import", w.h.base))
        .header("X-CSRF-Token", w.admin.csrf.clone().unwrap())
        .header("Content-Type", "text/csv")
        .body(new_csv)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let after = w.admin.ok(Method::GET, path, None).await;
    assert_eq!(prices(&after), (Value::Null, json!("4.5")));
    let json_import = json!({"models": [{"id": "cached-model", "provider": "Mock",
        "input_usd_per_mtok": "3", "output_usd_per_mtok": "15", "cache_write_usd_per_mtok": "3.75"}]});
    let counts = w
        .admin
        .ok(Method::POST, "/api/admin/models/import", Some(json_import))
        .await;
    assert_eq!(counts["updated"], 1);
    let after = w.admin.ok(Method::GET, path, None).await;
    assert_eq!(after["cache_write_usd_per_mtok"], "3.75");
    w.h.shutdown().await;
}

/// 1-hour cache writes, explicit cache hits and price tiers are read back exactly as
/// written, by every model route and through both export/import formats; tiers that
/// would give a model two prices at once are refused.
#[tokio::test]
async fn price_tiers_travel_through_every_model_route() {
    let w = world(Backend::Sqlite).await;
    let path = "/api/admin/models/tiered";
    let tiers = json!([
        {"name": "priority", "service_tier": "priority", "multiplier": "2"},
        {"name": "flex", "service_tier": "flex", "multiplier": "0.5", "output_usd_per_mtok": "4"},
        {"name": "peak", "utc": "01:00-04:00,06:00-10:00", "days": ["mon", "tue", "wed", "thu", "fri"],
         "multiplier": "2"},
        {"name": "off_peak", "utc": "16:30-00:30", "input_usd_per_mtok": "0.135",
         "cached_input_usd_per_mtok": "0.035", "explicit_cached_input_usd_per_mtok": "0.01",
         "cache_write_usd_per_mtok": "0.2", "cache_write_1h_usd_per_mtok": "0.3"}
    ]);
    let model = json!({"id": "tiered", "provider": "Mock", "input_usd_per_mtok": "0.27",
        "output_usd_per_mtok": "1.1", "cache_write_1h_usd_per_mtok": "0.54",
        "explicit_cached_input_usd_per_mtok": "0.027", "price_tiers": tiers});
    let extras = |m: &Value| {
        (
            m["cache_write_1h_usd_per_mtok"].clone(),
            m["explicit_cached_input_usd_per_mtok"].clone(),
            m["price_tiers"].clone(),
        )
    };
    let written = extras(&model);
    let created = w
        .admin
        .ok(Method::POST, "/api/admin/models", Some(model.clone()))
        .await;
    assert_eq!(extras(&created), written);
    assert_eq!(extras(&w.admin.ok(Method::GET, path, None).await), written);
    let listed = w.admin.ok(Method::GET, "/api/admin/models", None).await;
    let in_list = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "tiered")
        .cloned()
        .unwrap();
    assert_eq!(extras(&in_list), written);

    // JSON export → delete → import gives the same model back.
    let exported = w
        .admin
        .ok(Method::GET, "/api/admin/models/export", None)
        .await;
    let entry = exported["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "tiered")
        .cloned()
        .unwrap();
    w.admin.ok(Method::DELETE, path, None).await;
    let counts = w
        .admin
        .ok(
            Method::POST,
            "/api/admin/models/import",
            Some(json!({"models": [entry]})),
        )
        .await;
    assert_eq!(counts["added"], 1);
    assert_eq!(extras(&w.admin.ok(Method::GET, path, None).await), written);

    // CSV export → delete → import, likewise (the tiers travel as JSON in one cell).
    let csv = w
        .admin
        .send(Method::GET, "/api/admin/models/export?format=csv", None)
        .await
        .text()
        .await
        .unwrap();
    let header = csv.lines().next().unwrap();
    let row = csv.lines().find(|l| l.starts_with("tiered,")).unwrap();
    w.admin.ok(Method::DELETE, path, None).await;
    let response = w
        .admin
        .http
        .post(format!("{}/api/admin/models/import", w.h.base))
        .header("X-CSRF-Token", w.admin.csrf.clone().unwrap())
        .header("Content-Type", "text/csv")
        .body(format!("{header}\r\n{row}\r\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(extras(&w.admin.ok(Method::GET, path, None).await), written);

    let refused = [
        (
            json!([{"name": "a", "utc": "16:30-00:30"}, {"name": "b", "utc": "00:00-01:00"}]),
            "overlap",
        ),
        (
            json!([{"name": "a", "service_tier": "flex"}, {"name": "b", "service_tier": "flex"}]),
            "flex",
        ),
        (json!([{"name": "a", "utc": "25:00-01:00"}]), "HH:MM"),
        (
            json!([{"name": "standard", "service_tier": "flex"}]),
            "standard",
        ),
    ];
    for (tiers, reason) in refused {
        let mut bad = model.clone();
        bad["price_tiers"] = tiers.clone();
        let (status, body) = w.admin.call(Method::PUT, path, Some(bad)).await;
        assert_eq!(status, 400, "{tiers}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(reason),
            "{tiers}: {body}"
        );
    }
    assert_eq!(extras(&w.admin.ok(Method::GET, path, None).await), written);
    w.h.shutdown().await;
}

#[tokio::test]
async fn usage_listing_filters_aggregates_and_exports() {
    for backend in backends() {
        let w = world(backend).await;
        let key = w.api_key.bearer.clone().unwrap();
        for (model, n) in [("mock-gpt", 3), ("mock-free", 2)] {
            for _ in 0..n {
                assert_eq!(
                    w.h.chat(
                        &key,
                        json!({"model": model, "messages": user_says("count me")})
                    )
                    .await
                    .status(),
                    200
                );
            }
        }
        w.h.chat(&key, json!({"model": "nope", "messages": user_says("x")}))
            .await;
        w.h.gateway().writer.flush().await;
        let page = w.a.ok(Method::GET, "/api/me/usage?limit=2", None).await;
        assert_eq!(
            (
                page["total"].as_i64(),
                page["data"].as_array().unwrap().len()
            ),
            (Some(6), 2)
        );
        assert_eq!(
            w.a.ok(Method::GET, "/api/me/usage?model=mock-free", None)
                .await["total"],
            2
        );
        assert_eq!(
            w.a.ok(Method::GET, "/api/me/usage?status=error", None)
                .await["total"],
            1
        );
        assert_eq!(
            w.a.ok(Method::GET, "/api/me/usage?status=404", None).await["total"],
            1
        );
        assert_eq!(
            w.a.ok(Method::GET, "/api/me/usage?from=4102444800000", None)
                .await["total"],
            0
        );
        let summary =
            w.a.ok(Method::GET, "/api/me/usage/summary?group_by=model", None)
                .await;
        let gpt = summary["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == "mock-gpt")
            .unwrap()
            .clone();
        assert_eq!(gpt["requests"], 3);
        let listed =
            w.a.ok(Method::GET, "/api/me/usage?model=mock-gpt", None)
                .await;
        let cost = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["cost_usd"].as_str().unwrap().parse::<Nanos>().unwrap())
            .fold(Nanos::ZERO, |sum, c| sum + c);
        assert!(cost > Nanos::ZERO);
        assert_eq!(gpt["cost_usd"], cost.to_usd_string().as_str());
        assert!(gpt["latency_p95_ms"].as_i64().is_some());
        // The refused request (unknown model) is its own group, all errors.
        let refused = summary["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] != "mock-gpt" && g["group"] != "mock-free")
            .unwrap()
            .clone();
        assert_eq!(
            (refused["requests"].as_i64(), refused["error_rate"].as_f64()),
            (Some(1), Some(1.0))
        );
        let days = w
            .admin
            .ok(Method::GET, "/api/admin/usage/summary?group_by=user", None)
            .await;
        assert_eq!(days["data"][0]["group"], w.a.user_id.unwrap().to_string());
        let groups = days["total_groups"].as_u64().unwrap();
        assert_eq!(days["data"].as_array().unwrap().len() as u64, groups);
        assert!(days.get("others").is_none(), "{days}");
        // A summary by user or key answers the leading groups and sums the rest.
        let top = w
            .admin
            .ok(
                Method::GET,
                "/api/admin/usage/summary?group_by=model&limit=1",
                None,
            )
            .await;
        assert_eq!(top["data"].as_array().unwrap().len(), 1, "{top}");
        let all = w
            .admin
            .ok(Method::GET, "/api/admin/usage/summary?group_by=model", None)
            .await;
        let requests = |list: &serde_json::Value| {
            list["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["requests"].as_i64().unwrap())
                .sum::<i64>()
        };
        assert_eq!(top["total_groups"], all["total_groups"]);
        assert_eq!(
            requests(&top) + top["others"]["requests"].as_i64().unwrap_or(0),
            requests(&all)
        );
        for limit in ["0", "1001", "x"] {
            let path = format!("/api/admin/usage/summary?group_by=key&limit={limit}");
            assert_eq!(
                w.admin.call(Method::GET, &path, None).await.0,
                400,
                "{limit}"
            );
        }
        assert_eq!(
            w.a.call(Method::GET, "/api/me/usage/summary?group_by=user", None)
                .await
                .0,
            400
        );
        assert_eq!(
            w.a.call(Method::GET, "/api/me/usage?status=weird", None)
                .await
                .0,
            400
        );
        let csv =
            w.a.send(Method::GET, "/api/me/usage/export", None)
                .await
                .text()
                .await
                .unwrap();
        assert_eq!(csv.lines().count(), 7, "{csv}");
        assert!(csv.starts_with("id,request_id,created_at"));
        assert!(
            w.b.send(Method::GET, "/api/me/usage/export", None)
                .await
                .text()
                .await
                .unwrap()
                .lines()
                .count()
                == 1
        );
        let days = w.a.ok(Method::GET, "/api/me/usage/summary", None).await;
        assert_eq!(days["group_by"], "day");
        assert_eq!(days["data"].as_array().unwrap().len(), 1);
        assert!(days["data"][0]["group"].as_str().unwrap().starts_with("20"));
        assert_eq!(days["data"][0]["requests"], 6);
        // User search is case-insensitive and paged.
        let found = w
            .admin
            .ok(Method::GET, "/api/admin/users?search=ALI&limit=1", None)
            .await;
        assert_eq!(
            (found["total"].as_i64(), found["data"][0]["name"].as_str()),
            (Some(1), Some("alice"))
        );
        let users = w
            .admin
            .ok(Method::GET, "/api/admin/users?role=user", None)
            .await;
        // alice, bob and the system user that owns the chat demo's anonymous usage.
        assert_eq!(users["total"], 3);
        assert!(users.to_string().contains("\"~anonymous\""));
        w.h.shutdown().await;
    }
}

#[tokio::test]
async fn compatibility_endpoints_report_the_keys_standing() {
    let w = world(Backend::Sqlite).await;
    let quota =
        w.a.ok(
            Method::POST,
            "/api/me/keys",
            Some(json!({"quota_usd": "0.25", "expires_at": 4_102_444_800_000_i64})),
        )
        .await;
    let secret = quota["secret"].as_str().unwrap().to_string();
    w.h.reload().await;
    let caller = Caller::with_bearer(&w.h.base, &secret);
    assert_eq!(
        w.h.chat(
            &secret,
            json!({"model": "mock-gpt", "messages": user_says("Hello there")})
        )
        .await
        .status(),
        200
    );
    let spent = cost_of(5, 7);
    w.h.gateway().writer.flush().await;
    let usage = caller.ok(Method::GET, "/api/usage/key", None).await;
    assert_eq!(usage["quota_usd"], "0.25");
    assert_eq!(usage["spent_usd"], spent.to_usd_string().as_str());
    assert_eq!(
        usage["remaining_usd"],
        (Nanos(250_000_000) - spent).to_usd_string().as_str()
    );
    assert_eq!(
        usage["balance_usd"],
        (Nanos::from_usd(1) - spent).to_usd_string().as_str()
    );
    assert_eq!(usage["expires_at"], 4_102_444_800_000_i64);
    let subscription = caller
        .ok(Method::GET, "/v1/dashboard/billing/subscription", None)
        .await;
    assert_eq!(subscription["hard_limit_usd"], 0.25);
    assert_eq!(subscription["access_until"], 4_102_444_800_i64);
    assert_eq!(subscription["has_payment_method"], false);
    w.h.gateway().writer.flush().await;
    let billing = caller
        .ok(
            Method::GET,
            "/v1/dashboard/billing/usage?start_date=2020-01-01&end_date=2100-01-01",
            None,
        )
        .await;
    assert!((billing["total_usage"].as_f64().unwrap() - spent.as_usd_f64() * 100.0).abs() < 1e-9);
    assert_eq!(
        caller
            .ok(Method::GET, "/dashboard/billing/usage", None)
            .await["object"],
        "list"
    );
    // Errors on the /v1 paths are OpenAI-shaped.
    let (status, body) = Caller::with_bearer(&w.h.base, "sk-wrong")
        .call(Method::GET, "/v1/dashboard/billing/subscription", None)
        .await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    w.h.shutdown().await;
}

#[tokio::test]
async fn ledger_credits_minus_costs_equals_balance_and_codes_redeem_once() {
    for backend in backends() {
        let w = world(backend).await;
        let store = w.h.gateway().store.clone();
        let (a_id, b_id) = (w.a.user_id.unwrap(), w.b.user_id.unwrap());
        // Three codes of $0.50, each hit by 20 concurrent redemptions from A and B.
        let codes = w
            .admin
            .ok(
                Method::POST,
                "/api/admin/redemptions",
                Some(json!({"count": 3, "amount_usd": "0.50"})),
            )
            .await;
        let mut credited = [Nanos::ZERO, Nanos::ZERO];
        for code in codes["codes"].as_array().unwrap() {
            let code = code["code"].as_str().unwrap().to_string();
            let attempts = (0..20).map(|i| {
                let caller = if i % 2 == 0 { w.a.clone() } else { w.b.clone() };
                let body = json!({"code": code});
                async move {
                    (
                        i % 2,
                        caller
                            .call(Method::POST, "/api/me/redeem", Some(body))
                            .await,
                    )
                }
            });
            let results = futures_util::future::join_all(attempts).await;
            let winners: Vec<_> = results
                .iter()
                .filter(|(_, (status, _))| status.is_success())
                .collect();
            assert_eq!(
                winners.len(),
                1,
                "{backend:?}: a code credited {} times",
                winners.len()
            );
            for (_, (status, body)) in &results {
                assert!(
                    status.is_success()
                        || (status.as_u16() == 409 && body["error"]["code"] == "conflict"),
                    "{status} {body}"
                );
            }
            credited[winners[0].0] += Nanos(500_000_000);
        }
        let again =
            w.a.call(
                Method::POST,
                "/api/me/redeem",
                Some(json!({"code": codes["codes"][0]["code"]})),
            )
            .await;
        assert_eq!(again.0, 409);
        assert_eq!(
            w.a.call(
                Method::POST,
                "/api/me/redeem",
                Some(json!({"code": "THC-nope"}))
            )
            .await
            .0,
            404
        );
        // An admin credit and a debit, with reasons.
        w.admin
            .ok(
                Method::POST,
                &format!("/api/admin/users/{a_id}/balance"),
                Some(json!({"amount_usd": "2", "reason": "support"})),
            )
            .await;
        w.admin
            .ok(
                Method::POST,
                &format!("/api/admin/users/{b_id}/balance"),
                Some(json!({"amount_usd": "-0.1", "reason": "refund clawback"})),
            )
            .await;
        let (status, _) = w
            .admin
            .call(
                Method::POST,
                &format!("/api/admin/users/{a_id}/balance"),
                Some(json!({"amount_usd": "1", "reason": " "})),
            )
            .await;
        assert_eq!(status, 400);
        w.h.reload().await;

        // Many concurrent requests through the mock with A's key.
        let key = w.api_key.bearer.clone().unwrap();
        let requests = (0..30).map(|i| {
            let body = json!({"model": "mock-gpt", "stream": i % 3 == 0, "messages": user_says(&format!("request number {i}"))});
            w.h.chat(&key, body)
        });
        for response in futures_util::future::join_all(requests).await {
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap();
        }
        w.h.gateway().writer.flush().await;

        let trial = Nanos::from_usd(1);
        let credits_a = trial + credited[0] + Nanos::from_usd(2);
        let credits_b = trial + credited[1] - Nanos(100_000_000);
        let costs_a = w.a.ok(Method::GET, "/api/me/usage?limit=500", None).await["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["cost_usd"].as_str().unwrap().parse::<Nanos>().unwrap())
            .fold(Nanos::ZERO, |sum, c| sum + c);
        assert!(costs_a > Nanos::ZERO);
        for (id, expected) in [(a_id, credits_a - costs_a), (b_id, credits_b)] {
            let stored = store.user_by_id(id).await.unwrap().unwrap().balance;
            assert_eq!(stored, expected, "{backend:?}: user {id}");
            assert_eq!(
                store.recomputed_balance(id).await.unwrap(),
                expected,
                "{backend:?}: user {id}"
            );
        }
        // The ledger lists every credit, and they add up.
        let ledger = w.a.ok(Method::GET, "/api/me/ledger", None).await;
        let entries = ledger["data"].as_array().unwrap();
        let total = entries
            .iter()
            .map(|e| e["amount_usd"].as_str().unwrap().parse::<Nanos>().unwrap())
            .fold(Nanos::ZERO, |sum, a| sum + a);
        assert_eq!(total, credits_a, "{backend:?}");
        assert_eq!(entries.last().unwrap()["kind"], "trial");
        assert_eq!(entries[0]["kind"], "admin");
        assert_eq!(entries[0]["reason"], "support");
        let b_ledger = w
            .admin
            .ok(
                Method::GET,
                &format!("/api/admin/users/{b_id}/ledger"),
                None,
            )
            .await;
        assert_eq!(b_ledger["data"][0]["amount_usd"], "-0.1");
        let me = w.a.ok(Method::GET, "/api/me", None).await;
        assert_eq!(
            me["balance_usd"],
            (credits_a - costs_a).to_usd_string().as_str()
        );
        assert_eq!(me["live_balance_usd"], me["balance_usd"]);
        // Every code is used exactly once.
        let used = w
            .admin
            .ok(Method::GET, "/api/admin/redemptions?used=true", None)
            .await;
        assert_eq!(used["data"].as_array().unwrap().len(), 3);
        w.h.shutdown().await;
    }
}

#[tokio::test]
async fn a_channel_declares_native_responses_through_the_management_api() {
    for backend in backends() {
        let w = world(backend).await;
        let mock = format!("{}/v1", w.h.mock.base_url());
        let created = w
            .admin
            .ok(
                Method::POST,
                "/api/admin/channels",
                Some(
                    json!({"name": "openai-direct", "base_url": mock, "models": ["mock-gpt"],
                    "api_key": "sk-native-0123456789", "responses_native": true}),
                ),
            )
            .await;
        assert_eq!(created["responses_native"], true);
        let id = created["id"].as_i64().unwrap();
        let plain = w
            .admin
            .ok(
                Method::POST,
                "/api/admin/channels",
                Some(json!({"name": "plain", "base_url": mock})),
            )
            .await;
        assert_eq!(plain["responses_native"], false, "off unless declared");
        let (_, key) =
            w.h.user_with_key("responder", Nanos::from_usd(1), KeyOptions::default())
                .await;
        w.h.reload().await;
        let answered =
            w.h.http
                .post(format!("{}/v1/responses", w.h.base))
                .bearer_auth(&key)
                .json(&json!({"model": "mock-gpt", "input": "hi"}))
                .send()
                .await
                .unwrap();
        assert_eq!(answered.status(), 200);
        assert_eq!(w.h.mock.journal().last().unwrap().path, "/v1/responses");

        let patched = w
            .admin
            .ok(
                Method::PATCH,
                &format!("/api/admin/channels/{id}"),
                Some(json!({"responses_native": false})),
            )
            .await;
        assert_eq!(patched["responses_native"], false);
        assert_eq!(patched["name"], "openai-direct", "other fields stay");
        w.h.reload().await;
        let answered =
            w.h.http
                .post(format!("{}/v1/responses", w.h.base))
                .bearer_auth(&key)
                .json(&json!({"model": "mock-gpt", "input": "hi"}))
                .send()
                .await
                .unwrap();
        assert_eq!(answered.status(), 200);
        assert_eq!(
            w.h.mock.journal().last().unwrap().path,
            "/v1/chat/completions"
        );

        let openapi = w.root.ok(Method::GET, "/api/openapi.json", None).await;
        let schemas = &openapi["components"]["schemas"];
        for schema in ["ChannelView", "NewChannel", "ChannelPatch"] {
            // Flattened members make the schema an `allOf`: look anywhere inside it.
            assert!(
                schemas[schema].to_string().contains("\"responses_native\""),
                "{schema}: {}",
                schemas[schema]
            );
        }
        w.h.shutdown().await;
    }
}
