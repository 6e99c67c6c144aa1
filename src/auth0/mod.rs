//! The tenant end of the flow: every call to Auth0's Management API goes through [`Client`],
//! whose base URL and credentials are injected ([`Tenant`]). It gets and refreshes
//! client-credentials tokens, waits out rate limits, retries what networks and servers get
//! wrong, and reports Auth0's error bodies as Auth0 wrote them. Secrets never reach `Debug`
//! output, logs or error messages.

pub mod access;
pub mod export;
pub mod jobs;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::error::{Error, Result};

/// A secret (a token or a client secret): kept out of `Debug` and `Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// The secret itself, for the one place that sends it.
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// How userport proves who it is.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A Management API token given as is (`AUTH0_TOKEN`).
    Token(Secret),
    /// A machine-to-machine application: `POST /oauth/token` with client credentials.
    ClientCredentials {
        /// `AUTH0_CLIENT_ID`.
        client_id: String,
        /// `AUTH0_CLIENT_SECRET`.
        client_secret: Secret,
    },
}

/// A tenant to talk to: its base URL and credentials.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// `https://TENANT.auth0.com`, or `http://127.0.0.1:PORT` for a local server.
    pub base: String,
    /// The credentials.
    pub auth: Auth,
}

impl Tenant {
    /// The tenant of `--domain` (or `AUTH0_DOMAIN`) with the credentials of the environment:
    /// `AUTH0_TOKEN`, or `AUTH0_CLIENT_ID` and `AUTH0_CLIENT_SECRET`.
    pub fn from_env(domain: Option<&str>) -> Result<Tenant> {
        Tenant::from_vars(domain, "AUTH0_", "--domain")
    }

    /// The tenant of `domain` (given by the option `flag`, else `{prefix}DOMAIN`) with the
    /// credentials of the environment variables `{prefix}TOKEN`, or `{prefix}CLIENT_ID` and
    /// `{prefix}CLIENT_SECRET` (`AUTH0_FROM_` and `AUTH0_TO_` for `migrate`).
    pub fn from_vars(domain: Option<&str>, prefix: &str, flag: &str) -> Result<Tenant> {
        let var = |name: &str| {
            std::env::var(format!("{prefix}{name}"))
                .ok()
                .filter(|v| !v.trim().is_empty())
        };
        let domain = domain
            .map(str::to_string)
            .or_else(|| var("DOMAIN"))
            .ok_or_else(|| {
                Error::usage(
                    flag,
                    format!("no tenant: give {flag} TENANT.auth0.com or set {prefix}DOMAIN"),
                )
            })?;
        let base = base_url(&domain)?;
        let auth = match (var("TOKEN"), var("CLIENT_ID"), var("CLIENT_SECRET")) {
            (_, Some(client_id), Some(secret)) => Auth::ClientCredentials {
                client_id,
                client_secret: Secret::new(secret),
            },
            (Some(token), _, _) => Auth::Token(Secret::new(token)),
            _ => {
                return Err(Error::usage(
                    format!("credentials of {flag}"),
                    format!(
                        "set {prefix}CLIENT_ID and {prefix}CLIENT_SECRET (a machine-to-machine \
                         application authorized for the Management API), or {prefix}TOKEN"
                    ),
                ));
            }
        };
        Ok(Tenant { base, auth })
    }
}

/// The base URL of a tenant: a host name becomes `https://HOST`; a full URL is kept, but plain
/// `http` only for loopback addresses (a local test server).
pub fn base_url(domain: &str) -> Result<String> {
    let domain = domain.trim().trim_end_matches('/');
    let bad = |why: &str| Error::usage(format!("--domain {domain}"), why.to_string());
    let (scheme, rest) = match domain.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("https".to_string(), domain),
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(bad("expected a tenant host such as example.eu.auth0.com"));
    }
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => rest.rsplit_once(':').map_or(rest, |(h, _)| h),
    };
    match scheme.as_str() {
        "https" => {}
        "http" if loopback_host(host) => {}
        "http" => return Err(bad("plain http is allowed only for loopback addresses")),
        _ => return Err(bad("expected https://")),
    }
    Ok(format!("{scheme}://{rest}"))
}

/// Whether a download may go to `url`: https, or plain http to a loopback address.
fn allowed(url: &reqwest::Url) -> std::result::Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback_host(url.host_str().unwrap_or_default()) => Ok(()),
        "http" => Err(format!(
            "plain http is allowed only for loopback addresses, not {}",
            url.host_str().unwrap_or_default()
        )),
        other => Err(format!("{other}: only https is followed")),
    }
}

/// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost).
fn loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// How hard the client tries before it gives up.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Retries of a 5xx answer or a connection error.
    pub attempts: u32,
    /// The first backoff; each retry doubles it (with up to 50% jitter).
    pub base: Duration,
    /// The longest single backoff.
    pub max: Duration,
    /// The longest total wait for rate limits (429) on one call.
    pub rate_limit_budget: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        // USERPORT_BACKOFF_MS scales every wait down (the tests' servers answer at once).
        let base = std::env::var("USERPORT_BACKOFF_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_millis(500), Duration::from_millis);
        Retry {
            attempts: 5,
            base,
            max: base * 60,
            rate_limit_budget: Duration::from_secs(30 * 60),
        }
    }
}

impl Retry {
    /// The wait before retry number `attempt` (0-based): exponential, with jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1 << attempt.min(16)).min(self.max);
        let jitter = fastrand::u64(0..=exp.as_millis() as u64 / 2);
        exp + Duration::from_millis(jitter)
    }
}

/// An error body of the Management API.
#[derive(Debug, Default, Deserialize)]
struct ApiErrorBody {
    #[serde(rename = "statusCode")]
    status_code: Option<u16>,
    error: Option<String>,
    message: Option<String>,
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
    error_description: Option<String>,
}

/// A Management API client.
pub struct Client {
    /// For token and API calls: follows no redirect.
    http: reqwest::Client,
    /// For downloads (no credentials): follows redirects to https, or http on loopback.
    downloads: reqwest::Client,
    base: String,
    auth: Auth,
    token: Mutex<Option<Secret>>,
    /// The retry policy.
    pub retry: Retry,
    /// Told of each call (method, path, status, time; never headers or bodies).
    trace: Option<Trace>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("retry", &self.retry)
            .field("trace", &self.trace.is_some())
            .finish_non_exhaustive()
    }
}

/// A callback told one line about each call.
pub type Trace = Arc<dyn Fn(&str) + Send + Sync>;

impl Client {
    /// A client of `tenant` that tells `trace` of each call.
    pub fn with_trace(tenant: Tenant, trace: Option<Trace>) -> Result<Client> {
        let mut client = Client::new(tenant)?;
        client.trace = trace;
        Ok(client)
    }

    /// A client of `tenant`.
    pub fn new(tenant: Tenant) -> Result<Client> {
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("userport/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(30))
                .timeout(Duration::from_secs(300))
        };
        let built = |b: reqwest::ClientBuilder| {
            b.build()
                .map_err(|e| Error::Internal(format!("the HTTP client cannot be built: {e}")))
        };
        // A redirect would carry the request (a client secret, a token) to wherever it
        // points: token and API calls follow none.
        let http = built(builder().redirect(reqwest::redirect::Policy::none()))?;
        let downloads = built(builder().redirect(reqwest::redirect::Policy::custom(|hop| {
            if hop.previous().len() >= 10 {
                return hop.error("more than 10 redirects");
            }
            match allowed(hop.url()) {
                Ok(()) => hop.follow(),
                Err(why) => hop.error(why),
            }
        })))?;
        let token = match &tenant.auth {
            Auth::Token(token) => Some(token.clone()),
            Auth::ClientCredentials { .. } => None,
        };
        Ok(Client {
            http,
            downloads,
            base: tenant.base,
            auth: tenant.auth,
            token: Mutex::new(token),
            retry: Retry::default(),
            trace: None,
        })
    }

    /// The tenant's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A token: the one held, or a new one when there is none or `refresh` asks for it.
    async fn token(&self, refresh: bool) -> Result<Secret> {
        let mut held = self.token.lock().await;
        if let Some(token) = held.as_ref()
            && !refresh
        {
            return Ok(token.clone());
        }
        let Auth::ClientCredentials {
            client_id,
            client_secret,
        } = &self.auth
        else {
            return held
                .clone()
                .ok_or_else(|| Error::usage("AUTH0_TOKEN", "no token"));
        };
        let url = format!("{}/oauth/token", self.base);
        let audience = format!("{}/api/v2/", self.base);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", client_secret.expose()),
            ("audience", audience.as_str()),
        ];
        let response = self
            .send_with_retries("POST /oauth/token", || self.http.post(&url).form(&form))
            .await?;
        #[derive(Deserialize)]
        struct TokenBody {
            access_token: String,
        }
        let body: TokenBody = read_json("POST /oauth/token", response).await?;
        let token = Secret::new(body.access_token);
        *held = Some(token.clone());
        Ok(token)
    }

    /// Sends `METHOD /path` (built by `build` from a request with the URL and the token set;
    /// called again for each retry) and returns a successful response.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let url = format!("{}{path}", self.base);
        let mut refreshed = false;
        loop {
            let token = self.token(false).await?;
            let result = self
                .send_with_retries(&what, || {
                    build(
                        self.http
                            .request(method.clone(), &url)
                            .bearer_auth(token.expose()),
                    )
                })
                .await;
            match result {
                Err(Error::Api { status: 401, .. })
                    if !refreshed && matches!(self.auth, Auth::ClientCredentials { .. }) =>
                {
                    // An expired or revoked token: one new token, one more try.
                    refreshed = true;
                    self.token(true).await?;
                }
                other => return other,
            }
        }
    }

    /// Sends a request, waiting out 429s and retrying 5xx answers and connection errors.
    async fn send_with_retries(
        &self,
        what: &str,
        request: impl Fn() -> RequestBuilder,
    ) -> Result<Response> {
        let mut attempt = 0;
        let mut rate_limited = Duration::ZERO;
        loop {
            let started = std::time::Instant::now();
            let sent = request().send().await;
            if let Some(trace) = &self.trace {
                let outcome = match &sent {
                    Ok(response) => response.status().as_u16().to_string(),
                    Err(_) => "no answer".to_string(),
                };
                trace(&format!(
                    "{what} → {outcome} ({} ms)",
                    started.elapsed().as_millis()
                ));
            }
            let failure = match sent {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                    let wait = rate_limit_wait(&response)
                        .unwrap_or_else(|| self.retry.backoff(attempt.min(6)));
                    let error = api_error(what, response).await;
                    rate_limited += wait;
                    if rate_limited > self.retry.rate_limit_budget {
                        return Err(error);
                    }
                    if let Some(trace) = &self.trace {
                        trace(&format!("{what}: rate limited, waiting {wait:?}: {error}"));
                    }
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Ok(response) if response.status().is_redirection() => {
                    let to = response
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map_or_else(|| "nowhere".to_string(), redact);
                    return Err(Error::Api {
                        what: what.to_string(),
                        status: response.status().as_u16(),
                        message: format!(
                            "the tenant answered with a redirect (to {to}); userport follows \
                             no redirect on token and API calls, so that credentials go to \
                             the tenant only: give the tenant's own address with --domain"
                        ),
                        body: String::new(),
                    });
                }
                Ok(response) if response.status().is_server_error() => {
                    api_error(what, response).await
                }
                Ok(response) => return Err(api_error(what, response).await),
                Err(e) => {
                    let error = Error::Http {
                        what: what.to_string(),
                        message: error_chain(&e),
                    };
                    // Connection errors and timeouts are worth another try; others are not.
                    if !(e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()) {
                        return Err(error);
                    }
                    error
                }
            };
            if attempt >= self.retry.attempts {
                return Err(Error::GaveUp {
                    attempts: attempt + 1,
                    last: Box::new(failure),
                });
            }
            tokio::time::sleep(self.retry.backoff(attempt)).await;
            attempt += 1;
        }
    }
}

/// How long a 429 asks to wait: `Retry-After` (seconds), else `X-RateLimit-Reset` (epoch
/// seconds).
fn rate_limit_wait(response: &Response) -> Option<Duration> {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    if let Some(seconds) = header("retry-after") {
        return Some(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)));
    }
    let reset = header("x-ratelimit-reset")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some(Duration::from_secs_f64((reset - now).clamp(0.0, 3600.0)))
}

/// The error of a response that failed, with Auth0's body as Auth0 wrote it.
async fn api_error(what: &str, response: Response) -> Error {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body: ApiErrorBody = serde_json::from_str(&text).unwrap_or_default();
    let message = match (&body.message, &body.error_description) {
        (Some(m), _) | (None, Some(m)) => {
            let mut parts = vec![];
            if let Some(code) = body.status_code {
                parts.push(code.to_string());
            }
            if let Some(error) = &body.error {
                parts.push(error.clone());
            }
            let mut out = format!("{}: {m}", parts.join(" "));
            if let Some(code) = &body.error_code {
                out.push_str(&format!(" (errorCode {code})"));
            }
            out
        }
        _ if text.trim().is_empty() => String::from("(no body)"),
        _ => text.chars().take(500).collect(),
    };
    Error::Api {
        what: what.to_string(),
        status,
        message,
        body: text,
    }
}

/// A reqwest error and its causes, one line; its URL without the query string (download
/// links carry signatures).
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    if let Some(url) = e.url() {
        out = out.replace(url.as_str(), &redact(url.as_str()));
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

/// A URL without its query string (download links carry signatures).
pub fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

/// Reads a JSON body.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    what: &str,
    response: Response,
) -> Result<T> {
    let bytes = response.bytes().await.map_err(|e| Error::Http {
        what: what.to_string(),
        message: error_chain(&e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Http {
        what: what.to_string(),
        message: format!("unexpected answer: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_become_base_urls() {
        assert_eq!(
            base_url("example.eu.auth0.com").unwrap(),
            "https://example.eu.auth0.com"
        );
        assert_eq!(
            base_url("https://example.auth0.com/").unwrap(),
            "https://example.auth0.com"
        );
        assert_eq!(
            base_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            base_url("http://localhost:1").unwrap(),
            "http://localhost:1"
        );
        assert!(base_url("http://example.auth0.com").is_err());
        assert!(base_url("ftp://example.auth0.com").is_err());
        assert!(base_url("example.auth0.com/api").is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let auth = Auth::ClientCredentials {
            client_id: "id".into(),
            client_secret: Secret::new("hunter2"),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let retry = Retry {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
            rate_limit_budget: Duration::from_secs(1),
        };
        assert!(retry.backoff(0) >= Duration::from_millis(100));
        assert!(retry.backoff(0) <= Duration::from_millis(150));
        assert!(retry.backoff(3) >= Duration::from_millis(800));
        assert!(retry.backoff(20) <= Duration::from_secs(3));
    }
}
