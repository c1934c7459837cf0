//! Return-path messages, destination → source: `be16 type, be16 len, payload`
//! (migration.c `migrate_send_rp_message` / `source_return_path_thread`).

use bytes::{Buf, BufMut};

use super::format::{QemuVersion, RpMsgType, MAX_RP_PAYLOAD, REQ_PAGES_LEN};
use crate::error::{Error, ErrorKind, Result};
use crate::wire::{Reader, Writer};

/// A return-path message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpMessage {
    /// The destination finished; `error` when its load failed.
    Shut {
        /// Whether the destination had an error.
        error: bool,
    },
    /// Echo of a PING value.
    Pong(u32),
    /// Postcopy page request; `block` is `Some` when it differs from the previous request.
    ReqPages {
        /// RAMBlock name (`REQ_PAGES_ID`), or `None` for the previous block (`REQ_PAGES`).
        block: Option<String>,
        /// Byte offset within the block.
        start: u64,
        /// Length in bytes.
        len: u32,
    },
    /// The received bitmap of a block follows outside the framing.
    RecvBitmap(String),
    /// Resume acknowledged (value must be 1).
    ResumeAck(u32),
    /// Switchover allowed.
    SwitchoverAck,
}

impl RpMessage {
    /// Writes the framed message.
    ///
    /// ```
    /// use vmstate_runtime::savevm::RpMessage;
    /// use vmstate_runtime::wire::Writer;
    /// let mut w = Writer::new(Vec::new());
    /// RpMessage::Pong(3).write(&mut w).unwrap();
    /// assert_eq!(w.into_inner(), [0, 2, 0, 4, 0, 0, 0, 3]);
    /// ```
    pub fn write<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        let mut p = Writer::new(Vec::new());
        let ty = match self {
            RpMessage::Shut { error } => {
                p.write_u32(u32::from(*error))?;
                RpMsgType::Shut
            }
            RpMessage::Pong(v) => {
                p.write_u32(*v)?;
                RpMsgType::Pong
            }
            RpMessage::ReqPages { block, start, len } => {
                p.write_u64(*start)?;
                p.write_u32(*len)?;
                match block {
                    Some(name) => {
                        p.write_counted_bytes(name.as_bytes())?;
                        RpMsgType::ReqPagesId
                    }
                    None => RpMsgType::ReqPages,
                }
            }
            RpMessage::RecvBitmap(name) => {
                p.write_counted_bytes(name.as_bytes())?;
                RpMsgType::RecvBitmap
            }
            RpMessage::ResumeAck(v) => {
                p.write_u32(*v)?;
                RpMsgType::ResumeAck
            }
            RpMessage::SwitchoverAck => RpMsgType::SwitchoverAck,
        };
        let p = p.into_inner();
        w.write_u16(ty as u16)?;
        w.write_u16(p.len() as u16)?;
        w.write_bytes(&p)
    }

    /// Reads and validates one framed message as the source does.
    pub fn read<B: Buf>(r: &mut Reader<B>, version: QemuVersion) -> Result<RpMessage> {
        let at = r.position();
        let ty = r.read_u16()?;
        let len = usize::from(r.read_u16()?);
        let bad = |reason: String| Error::at(ErrorKind::BadReturnPathMessage { ty, reason }, at);
        let msg_type = match RpMsgType::from_u16(ty) {
            Some(t) if ty < version.rp_msg_max() => t,
            _ => return Err(bad("unknown message type".into())),
        };
        if len > MAX_RP_PAYLOAD {
            return Err(bad(format!("length {len} exceeds {MAX_RP_PAYLOAD}")));
        }
        if let Some(f) = msg_type.fixed_len() {
            if len != f {
                return Err(bad(format!("length {len}, expected {f}")));
            }
        }
        let mut buf = [0u8; MAX_RP_PAYLOAD];
        let p = &mut buf[..len];
        r.read_bytes(p)?;
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let name_at = |off: usize| -> Result<String> {
            let n = *p
                .get(off)
                .ok_or_else(|| bad("missing block name length".into()))?
                as usize;
            if off + 1 + n != len {
                return Err(bad(format!(
                    "name of {n} bytes does not match length {len}"
                )));
            }
            Ok(String::from_utf8_lossy(&p[off + 1..]).into_owned())
        };
        Ok(match msg_type {
            RpMsgType::Shut => RpMessage::Shut {
                error: be32(p) != 0,
            },
            RpMsgType::Pong => RpMessage::Pong(be32(p)),
            RpMsgType::ReqPages | RpMsgType::ReqPagesId => {
                if len < REQ_PAGES_LEN {
                    return Err(bad(format!("length {len} is too short")));
                }
                let mut s = [0u8; 8];
                s.copy_from_slice(&p[..8]);
                RpMessage::ReqPages {
                    start: u64::from_be_bytes(s),
                    len: be32(&p[8..]),
                    block: if msg_type == RpMsgType::ReqPagesId {
                        Some(name_at(REQ_PAGES_LEN)?)
                    } else {
                        None
                    },
                }
            }
            RpMsgType::RecvBitmap => RpMessage::RecvBitmap(name_at(0)?),
            RpMsgType::ResumeAck => RpMessage::ResumeAck(be32(p)),
            RpMsgType::SwitchoverAck => RpMessage::SwitchoverAck,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(m: RpMessage) {
        let mut w = Writer::new(Vec::new());
        m.write(&mut w).unwrap();
        let bytes = w.into_inner();
        let mut r = Reader::new(&bytes[..]);
        assert_eq!(RpMessage::read(&mut r, QemuVersion::V10).unwrap(), m);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn messages_roundtrip() {
        roundtrip(RpMessage::Shut { error: false });
        roundtrip(RpMessage::Shut { error: true });
        roundtrip(RpMessage::Pong(4));
        roundtrip(RpMessage::ReqPages {
            block: Some("pc.ram".into()),
            start: 0x2000,
            len: 4096,
        });
        roundtrip(RpMessage::ReqPages {
            block: None,
            start: 0x3000,
            len: 4096,
        });
        roundtrip(RpMessage::RecvBitmap("pc.ram".into()));
        roundtrip(RpMessage::ResumeAck(
            crate::savevm::format::RESUME_ACK_VALUE,
        ));
        roundtrip(RpMessage::SwitchoverAck);
    }

    #[test]
    fn rejects_like_the_source_thread() {
        let read = |b: &[u8], v| RpMessage::read(&mut Reader::new(b), v);
        assert!(read(&[0, 0, 0, 0], QemuVersion::V10).is_err());
        assert!(read(&[0, 7, 0, 0], QemuVersion::V7_2).is_err());
        assert!(read(&[0, 7, 0, 0], QemuVersion::V10).is_ok());
        assert!(read(&[0, 2, 0, 3, 0, 0, 0], QemuVersion::V7_2).is_err());
        let mut big = vec![0, 3, 0x02, 0x01];
        big.extend_from_slice(&[0; 513]);
        assert!(read(&big, QemuVersion::V7_2).is_err());
        // REQ_PAGES_ID whose name length disagrees with the frame.
        let mut m = vec![0, 3, 0, 15];
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[5, b'a', b'b']);
        assert!(read(&m, QemuVersion::V7_2).is_err());
    }
}
