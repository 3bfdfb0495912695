//! The client's address, for IP allow lists and login throttling.
//!
//! It is the TCP peer, unless that peer is a trusted proxy (`trusted_proxies`): then the
//! right-most address in `X-Forwarded-For` that is not itself a trusted proxy. Only
//! trusted peers are believed, so a client cannot pick its own address by sending the
//! header directly.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use http::HeaderMap;
use http::request::Parts;

/// The resolved address; `None` when the server runs without connect info (in-process tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or(ClientIp(None)))
    }
}

/// Resolves the address once per request and stores it as an extension.
pub fn resolve(proxies: &[ipnet::IpNet], request: &mut Request) {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let client = of(proxies, peer, request.headers());
    request.extensions_mut().insert(client);
}

/// The client's address, from the TCP peer's (`None` when not served over TCP) and the
/// request's headers.
pub fn of(proxies: &[ipnet::IpNet], peer: Option<IpAddr>, headers: &HeaderMap) -> ClientIp {
    ClientIp(peer.map(|peer| {
        // Nothing to read in `X-Forwarded-For` unless the peer is a trusted proxy.
        if proxies.is_empty() {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        client_address(peer, &forwarded, proxies)
    }))
}

fn client_address(peer: IpAddr, forwarded: &str, proxies: &[ipnet::IpNet]) -> IpAddr {
    let trusted = |ip: &IpAddr| proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    forwarded
        .rsplit(',')
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .find(|hop| !trusted(hop))
        .unwrap_or(peer)
}

/// Parses `trusted_proxies` entries: CIDRs or single addresses.
pub fn parse_proxies(entries: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
    entries
        .iter()
        .map(|entry| {
            let entry = entry.trim();
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("'{entry}' is not an IP address or CIDR"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let proxies = parse_proxies(&["10.0.0.0/8".into(), "127.0.0.1".into()]).unwrap();
        assert_eq!(
            client_address(ip("203.0.113.9"), "1.2.3.4", &proxies),
            ip("203.0.113.9"),
            "untrusted peer"
        );
        assert_eq!(
            client_address(ip("10.1.1.1"), "1.2.3.4", &proxies),
            ip("1.2.3.4")
        );
        // A client-supplied first hop is ignored: the right-most untrusted hop wins.
        assert_eq!(
            client_address(ip("127.0.0.1"), "6.6.6.6, 1.2.3.4, 10.0.0.5", &proxies),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_address(ip("10.1.1.1"), "garbage", &proxies),
            ip("10.1.1.1")
        );
        assert_eq!(client_address(ip("10.1.1.1"), "", &[]), ip("10.1.1.1"));
        assert!(parse_proxies(&["nope".into()]).is_err());
    }
}
