//! The table of outstanding echo requests on one socket, and how replies are matched to
//! them. Pure: no sockets, so every matching rule is unit tested.

use std::collections::HashMap;
use std::net::IpAddr;

use tokio::sync::oneshot;

use super::packet::{Received, Token};

/// What a waiting probe is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Reply,
    Unreachable { code: u8 },
}

/// One echo request waiting for its reply.
#[derive(Debug)]
struct Pending {
    addr: IpAddr,
    token: Token,
    tx: oneshot::Sender<Answer>,
}

/// How a received message was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Delivered to a waiting probe.
    Matched,
    /// An echo reply no probe was waiting for (or forged): dropped and counted.
    Unmatched,
    /// Not an echo reply, or an unreachable about someone else's request: ignored.
    Ignored,
}

/// Outstanding requests of one socket, keyed by sequence number. The identifier is fixed per
/// socket: `ident` is Some for raw sockets (replies must carry it) and None for ping sockets,
/// where the kernel rewrites it and only delivers replies addressed to the socket anyway.
#[derive(Debug)]
pub struct Outstanding {
    ident: Option<u16>,
    next_seq: u16,
    pending: HashMap<u16, Pending>,
}

impl Outstanding {
    pub fn new(ident: Option<u16>, first_seq: u16) -> Self {
        Outstanding {
            ident,
            next_seq: first_seq,
            pending: HashMap::new(),
        }
    }

    /// Registers a request to `addr`; returns its sequence number, or None if all 65536
    /// sequence numbers are in flight.
    pub fn insert(
        &mut self,
        addr: IpAddr,
        token: Token,
        tx: oneshot::Sender<Answer>,
    ) -> Option<u16> {
        for _ in 0..=u16::MAX {
            let seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            if let std::collections::hash_map::Entry::Vacant(slot) = self.pending.entry(seq) {
                slot.insert(Pending { addr, token, tx });
                return Some(seq);
            }
        }
        None
    }

    /// Forgets a request (timed out or finished). Only removes it if it is still the one
    /// with `token`, so a reused sequence number is never cancelled by mistake.
    pub fn remove(&mut self, seq: u16, token: &Token) {
        if self.pending.get(&seq).is_some_and(|p| &p.token == token) {
            self.pending.remove(&seq);
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Matches a received message against the table and wakes its probe.
    pub fn dispatch(&mut self, msg: &Received) -> Dispatch {
        match msg {
            Received::Reply {
                src,
                ident,
                seq,
                payload,
            } => {
                let matches = self.ident_ok(*ident)
                    && self.pending.get(seq).is_some_and(|p| {
                        p.addr == *src
                            && payload.len() >= p.token.len()
                            && payload[..p.token.len()] == p.token
                    });
                if !matches {
                    return Dispatch::Unmatched;
                }
                self.complete(*seq, Answer::Reply)
            }
            Received::Unreachable {
                dst,
                ident,
                seq,
                code,
            } => {
                let ours =
                    self.ident_ok(*ident) && self.pending.get(seq).is_some_and(|p| p.addr == *dst);
                if !ours {
                    return Dispatch::Ignored;
                }
                self.complete(*seq, Answer::Unreachable { code: *code })
            }
            Received::Other => Dispatch::Ignored,
        }
    }

    fn ident_ok(&self, ident: u16) -> bool {
        self.ident.is_none_or(|mine| mine == ident)
    }

    fn complete(&mut self, seq: u16, answer: Answer) -> Dispatch {
        if let Some(p) = self.pending.remove(&seq) {
            // The probe may have just given up; then nobody is listening, which is fine.
            let _ = p.tx.send(answer);
        }
        Dispatch::Matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: Token = [9, 8, 7, 6, 5, 4, 3, 2];
    const IDENT: u16 = 0x4d47;

    fn addr() -> IpAddr {
        "192.0.2.10".parse().unwrap()
    }

    fn reply(src: IpAddr, ident: u16, seq: u16, payload: &[u8]) -> Received {
        Received::Reply {
            src,
            ident,
            seq,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn matching_reply_wakes_the_probe() {
        let mut t = Outstanding::new(Some(IDENT), 100);
        let (tx, mut rx) = oneshot::channel();
        let seq = t.insert(addr(), TOKEN, tx).unwrap();
        assert_eq!(seq, 100);
        assert_eq!(
            t.dispatch(&reply(addr(), IDENT, seq, &TOKEN)),
            Dispatch::Matched
        );
        assert_eq!(rx.try_recv(), Ok(Answer::Reply));
        assert!(t.is_empty());
        // A duplicate reply finds nothing waiting any more.
        assert_eq!(
            t.dispatch(&reply(addr(), IDENT, seq, &TOKEN)),
            Dispatch::Unmatched
        );
    }

    #[test]
    fn every_field_must_match() {
        let mut t = Outstanding::new(Some(IDENT), 0);
        let (tx, mut rx) = oneshot::channel();
        let seq = t.insert(addr(), TOKEN, tx).unwrap();
        let other: IpAddr = "192.0.2.11".parse().unwrap();
        let wrong = [
            reply(other, IDENT, seq, &TOKEN),
            reply(addr(), IDENT ^ 1, seq, &TOKEN),
            reply(addr(), IDENT, seq.wrapping_add(1), &TOKEN),
            reply(addr(), IDENT, seq, &[0u8; 8]),
            reply(addr(), IDENT, seq, &TOKEN[..4]),
        ];
        for msg in &wrong {
            assert_eq!(t.dispatch(msg), Dispatch::Unmatched, "{msg:?}");
        }
        assert!(rx.try_recv().is_err(), "nothing credited");
        assert_eq!(t.len(), 1);
        // A longer payload starting with the token is fine (some stacks pad).
        let mut padded = TOKEN.to_vec();
        padded.extend_from_slice(&[0; 8]);
        assert_eq!(
            t.dispatch(&reply(addr(), IDENT, seq, &padded)),
            Dispatch::Matched
        );
    }

    #[test]
    fn ping_sockets_ignore_the_identifier() {
        let mut t = Outstanding::new(None, 0);
        let (tx, mut rx) = oneshot::channel();
        let seq = t.insert(addr(), TOKEN, tx).unwrap();
        assert_eq!(
            t.dispatch(&reply(addr(), 777, seq, &TOKEN)),
            Dispatch::Matched
        );
        assert_eq!(rx.try_recv(), Ok(Answer::Reply));
    }

    #[test]
    fn unreachable_for_our_request() {
        let mut t = Outstanding::new(Some(IDENT), 0);
        let (tx, mut rx) = oneshot::channel();
        let seq = t.insert(addr(), TOKEN, tx).unwrap();
        let someone_else = Received::Unreachable {
            dst: "192.0.2.99".parse().unwrap(),
            ident: IDENT,
            seq,
            code: 1,
        };
        assert_eq!(t.dispatch(&someone_else), Dispatch::Ignored);
        let ours = Received::Unreachable {
            dst: addr(),
            ident: IDENT,
            seq,
            code: 1,
        };
        assert_eq!(t.dispatch(&ours), Dispatch::Matched);
        assert_eq!(rx.try_recv(), Ok(Answer::Unreachable { code: 1 }));
        assert_eq!(t.dispatch(&Received::Other), Dispatch::Ignored);
    }

    #[test]
    fn sequence_numbers_wrap_and_skip_busy_ones() {
        let mut t = Outstanding::new(Some(IDENT), u16::MAX);
        let (a, _ra) = oneshot::channel();
        let (b, _rb) = oneshot::channel();
        assert_eq!(t.insert(addr(), TOKEN, a), Some(u16::MAX));
        assert_eq!(t.insert(addr(), TOKEN, b), Some(0));
        // Come round again: 65535 and 0 are busy, so 1 is next after wrapping.
        t.next_seq = u16::MAX;
        let (c, _rc) = oneshot::channel();
        assert_eq!(t.insert(addr(), TOKEN, c), Some(1));
    }

    #[test]
    fn remove_only_the_same_request() {
        let mut t = Outstanding::new(Some(IDENT), 5);
        let (tx, _rx) = oneshot::channel();
        let seq = t.insert(addr(), TOKEN, tx).unwrap();
        t.remove(seq, &[0; 8]);
        assert_eq!(t.len(), 1);
        t.remove(seq, &TOKEN);
        assert!(t.is_empty());
    }
}
