//! Which peer connection a datagram on the shared UDP port belongs to.
//!
//! A STUN binding request names the connection in its USERNAME (`<our ufrag>:<their ufrag>`);
//! every other datagram (DTLS, SRTP, SRTCP) is matched by its remote address. An address is
//! learnt only after its binding request has been answered with a success — i.e. it passed
//! the connection's message-integrity check — because `rtc` does no source-address check on
//! media once a pair is selected: this map is the only thing that keeps a stranger's packets
//! out of a connection.

use std::collections::HashMap;
use std::net::SocketAddr;

use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::message::{CLASS_SUCCESS_RESPONSE, Message, is_stun_message};
use rtc::stun::textattrs::TextAttribute;

use super::link::ConnKey;

#[derive(Debug, Default)]
pub(crate) struct Demux {
    by_ufrag: HashMap<String, ConnKey>,
    by_addr: HashMap<SocketAddr, ConnKey>,
    addrs_of: HashMap<ConnKey, Vec<SocketAddr>>,
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// A STUN message for this connection (by ufrag); learn the address if it is answered.
    Stun(ConnKey),
    /// A datagram from a known address.
    Known(ConnKey),
    Unknown,
}

impl Demux {
    pub fn add_ufrag(&mut self, ufrag: String, conn: ConnKey) {
        self.by_ufrag.insert(ufrag, conn);
    }

    pub fn route(&self, from: SocketAddr, datagram: &[u8]) -> Route {
        if is_stun_message(datagram)
            && let Some(ufrag) = local_ufrag(datagram)
        {
            return match self.by_ufrag.get(&ufrag) {
                Some(&conn) => Route::Stun(conn),
                None => Route::Unknown,
            };
        }
        match self.by_addr.get(&from) {
            Some(&conn) => Route::Known(conn),
            None => Route::Unknown,
        }
    }

    /// Binds `addr` to `conn` (a binding request from it was answered with success). An
    /// address moves to the newest connection that proved it, e.g. after a client reuses a port.
    pub fn learn_addr(&mut self, conn: ConnKey, addr: SocketAddr) {
        if let Some(old) = self.by_addr.insert(addr, conn)
            && old != conn
            && let Some(list) = self.addrs_of.get_mut(&old)
        {
            list.retain(|a| *a != addr);
        }
        let list = self.addrs_of.entry(conn).or_default();
        if !list.contains(&addr) {
            list.push(addr);
        }
    }

    /// Forgets everything that leads to `conn`.
    pub fn remove(&mut self, conn: ConnKey) {
        self.by_ufrag.retain(|_, c| *c != conn);
        for addr in self.addrs_of.remove(&conn).unwrap_or_default() {
            if self.by_addr.get(&addr) == Some(&conn) {
                self.by_addr.remove(&addr);
            }
        }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_ufrag.is_empty() && self.by_addr.is_empty()
    }
}

/// The local (our) ufrag named by a STUN request's USERNAME, if it has one.
fn local_ufrag(datagram: &[u8]) -> Option<String> {
    let mut msg = Message::new();
    msg.raw = datagram.to_vec();
    msg.decode().ok()?;
    let username = TextAttribute::get_from_as(&msg, ATTR_USERNAME).ok()?;
    let ours = username.text.split(':').next()?;
    Some(ours.to_owned())
}

/// Whether an outgoing datagram is a STUN success response (the connection accepted a
/// binding request, so the request's source address is proven).
pub(crate) fn is_stun_success(datagram: &[u8]) -> bool {
    if !is_stun_message(datagram) {
        return false;
    }
    let mut msg = Message::new();
    msg.raw = datagram.to_vec();
    msg.decode().is_ok() && msg.typ.class == CLASS_SUCCESS_RESPONSE
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::message::TransactionId;
    use rtc::stun::message::{BINDING_REQUEST, Setter};

    fn binding_request(username: &str) -> Vec<u8> {
        let mut msg = Message::new();
        let attrs: Vec<Box<dyn Setter>> = vec![
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
        ];
        msg.build(&attrs).expect("a valid message");
        msg.raw
    }

    #[test]
    fn routes_stun_by_ufrag_and_media_by_learnt_address() {
        let mut demux = Demux::default();
        demux.add_ufrag("abc".into(), ConnKey(1));
        demux.add_ufrag("xyz".into(), ConnKey(2));
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        assert_eq!(
            demux.route(a, &binding_request("xyz:remote")),
            Route::Stun(ConnKey(2))
        );
        assert_eq!(
            demux.route(a, &binding_request("nope:remote")),
            Route::Unknown
        );
        let srtp = [0x80u8, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(demux.route(a, &srtp), Route::Unknown, "not proven yet");
        demux.learn_addr(ConnKey(2), a);
        assert_eq!(demux.route(a, &srtp), Route::Known(ConnKey(2)));
        assert_eq!(demux.route(b, &srtp), Route::Unknown);
        demux.remove(ConnKey(2));
        assert_eq!(demux.route(a, &srtp), Route::Unknown);
        demux.remove(ConnKey(1));
        assert!(demux.is_empty());
    }
}
