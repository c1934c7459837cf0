//! QEMU_VM_COMMAND records: `0x08, be16 cmd, be16 len, payload` (savevm.c
//! `qemu_savevm_command_send` / `loadvm_process_command`).

use bytes::{Buf, BufMut};

use super::format::{
    MigCmd, QemuVersion, RecordType, DISCARD_RANGE_LEN, POSTCOPY_ADVISE_LEN,
    POSTCOPY_RAM_DISCARD_VERSION,
};
use crate::error::{Error, ErrorKind, Result};
use crate::wire::{Reader, Writer};

/// Page sizes announced by POSTCOPY_ADVISE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostcopyAdvise {
    /// OR of the page sizes of all RAM blocks (QEMU `ram_pagesize_summary`).
    pub host_page_summary: u64,
    /// Target page size.
    pub target_page_size: u64,
}

/// A decoded command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open the return path.
    OpenReturnPath,
    /// Ask for a PONG carrying this value.
    Ping(u32),
    /// Postcopy may follow (`None`: dirty-bitmap-only postcopy, empty payload).
    PostcopyAdvise(Option<PostcopyAdvise>),
    /// Start the postcopy listen thread.
    PostcopyListen,
    /// Start the guest (ends the packaged stream).
    PostcopyRun,
    /// Discard these byte ranges (start, length) of a RAMBlock.
    PostcopyRamDiscard {
        /// RAMBlock idstr.
        block: String,
        /// (start, length) in bytes within the block.
        ranges: Vec<(u64, u64)>,
    },
    /// A nested stream of this many bytes follows the record.
    Packaged(u32),
    /// Enable COLO.
    EnableColo,
    /// Postcopy recovery: resume.
    PostcopyResume,
    /// Postcopy recovery: send the received bitmap of this block.
    RecvBitmap(String),
    /// Switchover is about to happen (QEMU 10.x).
    SwitchoverStart,
}

impl Command {
    /// Its MIG_CMD.
    pub fn cmd(&self) -> MigCmd {
        match self {
            Command::OpenReturnPath => MigCmd::OpenReturnPath,
            Command::Ping(_) => MigCmd::Ping,
            Command::PostcopyAdvise(_) => MigCmd::PostcopyAdvise,
            Command::PostcopyListen => MigCmd::PostcopyListen,
            Command::PostcopyRun => MigCmd::PostcopyRun,
            Command::PostcopyRamDiscard { .. } => MigCmd::PostcopyRamDiscard,
            Command::Packaged(_) => MigCmd::Packaged,
            Command::EnableColo => MigCmd::EnableColo,
            Command::PostcopyResume => MigCmd::PostcopyResume,
            Command::RecvBitmap(_) => MigCmd::RecvBitmap,
            Command::SwitchoverStart => MigCmd::SwitchoverStart,
        }
    }

    /// Its MIG_CMD number.
    pub fn number(&self) -> u16 {
        self.cmd() as u16
    }

    /// QEMU's name for it (for messages).
    pub fn name(&self) -> &'static str {
        self.cmd().name()
    }

    /// Writes the whole record (type byte, header, payload).
    ///
    /// ```
    /// use vmstate_runtime::savevm::Command;
    /// use vmstate_runtime::wire::Writer;
    /// let mut w = Writer::new(Vec::new());
    /// Command::Ping(1).write(&mut w).unwrap();
    /// assert_eq!(w.into_inner(), [0x08, 0, 2, 0, 4, 0, 0, 0, 1]);
    /// ```
    pub fn write<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        let mut payload = Writer::new(Vec::new());
        match self {
            Command::Ping(v) => payload.write_u32(*v)?,
            Command::PostcopyAdvise(Some(a)) => {
                payload.write_u64(a.host_page_summary)?;
                payload.write_u64(a.target_page_size)?;
            }
            Command::PostcopyRamDiscard { block, ranges } => {
                payload.write_u8(POSTCOPY_RAM_DISCARD_VERSION)?;
                payload.write_counted_bytes(block.as_bytes())?;
                payload.write_u8(0)?; // NUL
                for (start, len) in ranges {
                    payload.write_u64(*start)?;
                    payload.write_u64(*len)?;
                }
            }
            Command::Packaged(len) => payload.write_u32(*len)?,
            Command::RecvBitmap(block) => payload.write_counted_bytes(block.as_bytes())?,
            Command::OpenReturnPath
            | Command::PostcopyAdvise(None)
            | Command::PostcopyListen
            | Command::PostcopyRun
            | Command::EnableColo
            | Command::PostcopyResume
            | Command::SwitchoverStart => {}
        }
        let payload = payload.into_inner();
        let len = u16::try_from(payload.len()).map_err(|_| {
            Error::new(ErrorKind::CommandTooLarge {
                cmd: self.cmd(),
                len: payload.len(),
            })
        })?;
        w.write_u8(RecordType::Command as u8)?;
        w.write_u16(self.number())?;
        w.write_u16(len)?;
        w.write_bytes(&payload)
    }

    /// Reads a command record's header and payload (the 0x08 byte already consumed)
    /// and validates it as `version`'s loader does.
    pub fn read<B: Buf>(r: &mut Reader<B>, version: QemuVersion) -> Result<Command> {
        let at = r.position();
        let number = r.read_u16()?;
        let len = r.read_u16()?;
        if number >= version.mig_cmd_max() || MigCmd::from_u16(number).is_none() {
            return Err(Error::at(
                ErrorKind::UnknownCommand { cmd: number, len },
                at,
            ));
        }
        // At most 64 KiB, and only once the bytes are present.
        let payload = r.read_vec(usize::from(len))?;
        Command::decode(number, &payload).map_err(|e| e.with_offset(at))
    }

    /// Decodes a payload for command `number`.
    pub fn decode(number: u16, payload: &[u8]) -> Result<Command> {
        let Some(cmd) = MigCmd::from_u16(number) else {
            return Err(Error::new(ErrorKind::UnknownCommand {
                cmd: number,
                len: payload.len() as u16,
            }));
        };
        let name = cmd.name();
        if let Some(expected) = cmd.fixed_len() {
            if payload.len() != usize::from(expected) {
                return Err(Error::new(ErrorKind::BadCommandLength {
                    name,
                    len: payload.len(),
                    expected: expected.into(),
                }));
            }
        }
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let be64 = |b: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[..8]);
            u64::from_be_bytes(a)
        };
        let malformed = |reason: String| Error::new(ErrorKind::MalformedCommand { name, reason });
        Ok(match cmd {
            MigCmd::OpenReturnPath => Command::OpenReturnPath,
            MigCmd::Ping => Command::Ping(be32(payload)),
            MigCmd::PostcopyAdvise => match payload.len() {
                0 => Command::PostcopyAdvise(None),
                n if n == usize::from(POSTCOPY_ADVISE_LEN) => {
                    Command::PostcopyAdvise(Some(PostcopyAdvise {
                        host_page_summary: be64(payload),
                        target_page_size: be64(&payload[8..]),
                    }))
                }
                n => {
                    return Err(malformed(format!(
                        "length {n}, expected 0 or {POSTCOPY_ADVISE_LEN}"
                    )))
                }
            },
            MigCmd::PostcopyListen => Command::PostcopyListen,
            MigCmd::PostcopyRun => Command::PostcopyRun,
            MigCmd::PostcopyRamDiscard => {
                // version, name length, name (>= 1 byte), NUL, then >= 1 range.
                if payload.len() < 1 + 1 + 1 + 1 + DISCARD_RANGE_LEN {
                    return Err(malformed(format!("length {} is too short", payload.len())));
                }
                if payload[0] != POSTCOPY_RAM_DISCARD_VERSION {
                    return Err(malformed(format!("unknown version {}", payload[0])));
                }
                let n = payload[1] as usize;
                let Some(&nul) = payload.get(2 + n) else {
                    return Err(malformed(format!("name of {n} bytes overruns the payload")));
                };
                if nul != 0 {
                    return Err(malformed(format!(
                        "expected NUL after the name, found {nul:#04x}"
                    )));
                }
                let rest = &payload[3 + n..];
                if !rest.len().is_multiple_of(DISCARD_RANGE_LEN) {
                    return Err(malformed(format!(
                        "{} bytes of ranges is not a multiple of {DISCARD_RANGE_LEN}",
                        rest.len()
                    )));
                }
                Command::PostcopyRamDiscard {
                    block: String::from_utf8_lossy(&payload[2..2 + n]).into_owned(),
                    ranges: rest
                        .chunks_exact(DISCARD_RANGE_LEN)
                        .map(|c| (be64(c), be64(&c[8..])))
                        .collect(),
                }
            }
            MigCmd::Packaged => Command::Packaged(be32(payload)),
            MigCmd::EnableColo => Command::EnableColo,
            MigCmd::PostcopyResume => Command::PostcopyResume,
            MigCmd::RecvBitmap => {
                let n = payload.first().copied().unwrap_or(0) as usize;
                if payload.is_empty() || payload.len() != n + 1 {
                    return Err(malformed(format!(
                        "length {} does not match a name of {n} bytes",
                        payload.len()
                    )));
                }
                Command::RecvBitmap(String::from_utf8_lossy(&payload[1..]).into_owned())
            }
            MigCmd::SwitchoverStart => Command::SwitchoverStart,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(c: Command) {
        let mut w = Writer::new(Vec::new());
        c.write(&mut w).unwrap();
        let bytes = w.into_inner();
        assert_eq!(bytes[0], RecordType::Command as u8);
        let mut r = Reader::new(&bytes[1..]);
        assert_eq!(Command::read(&mut r, QemuVersion::V10).unwrap(), c);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn every_command_roundtrips() {
        roundtrip(Command::OpenReturnPath);
        roundtrip(Command::Ping(0xdead_beef));
        roundtrip(Command::PostcopyAdvise(None));
        roundtrip(Command::PostcopyAdvise(Some(PostcopyAdvise {
            host_page_summary: 0x1000,
            target_page_size: 0x1000,
        })));
        roundtrip(Command::PostcopyListen);
        roundtrip(Command::PostcopyRun);
        roundtrip(Command::PostcopyRamDiscard {
            block: "pc.ram".into(),
            ranges: vec![(0, 0x1000), (0x20000, 0x3000)],
        });
        roundtrip(Command::Packaged(1234));
        roundtrip(Command::EnableColo);
        roundtrip(Command::PostcopyResume);
        roundtrip(Command::RecvBitmap("pc.ram".into()));
        roundtrip(Command::SwitchoverStart);
    }

    #[test]
    fn exact_bytes_of_advise_and_discard() {
        let mut w = Writer::new(Vec::new());
        Command::PostcopyRamDiscard {
            block: "ab".into(),
            ranges: vec![(1, 2)],
        }
        .write(&mut w)
        .unwrap();
        let mut expected = vec![0x08, 0, 6, 0, 21, 0, 2, b'a', b'b', 0];
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&2u64.to_be_bytes());
        assert_eq!(w.into_inner(), expected);
    }

    #[test]
    fn loader_rejections() {
        let read = |bytes: &[u8], v| Command::read(&mut Reader::new(bytes), v);
        // cmd 0 and >= MAX.
        assert!(matches!(
            read(&[0, 0, 0, 0], QemuVersion::V7_2).unwrap_err().kind(),
            ErrorKind::UnknownCommand { cmd: 0, .. }
        ));
        // SWITCHOVER_START is unknown to 7.2 ("MIG_CMD 0xb unknown").
        let e = read(&[0, 11, 0, 0], QemuVersion::V7_2).unwrap_err();
        assert!(matches!(
            e.kind(),
            ErrorKind::UnknownCommand { cmd: 11, len: 0 }
        ));
        assert_eq!(
            read(&[0, 11, 0, 0], QemuVersion::V10).unwrap(),
            Command::SwitchoverStart
        );
        // Wrong fixed lengths.
        assert!(matches!(
            read(&[0, 2, 0, 3, 0, 0, 1], QemuVersion::V7_2)
                .unwrap_err()
                .kind(),
            ErrorKind::BadCommandLength {
                name: "PING",
                len: 3,
                expected: 4
            }
        ));
        assert!(read(&[0, 1, 0, 1, 0], QemuVersion::V7_2).is_err());
        // ADVISE with length 8.
        assert!(read(&[0, 3, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0], QemuVersion::V7_2).is_err());
        // DISCARD: bad version, missing NUL, ragged ranges, too short.
        let mut d = vec![0, 6, 0, 20, 1, 1, b'x', 0];
        d.extend_from_slice(&[0; 16]);
        assert!(read(&d, QemuVersion::V7_2).is_err());
        d[4] = 0;
        d[7] = 9;
        assert!(read(&d, QemuVersion::V7_2).is_err());
        d[7] = 0;
        assert!(read(&d, QemuVersion::V7_2).is_ok());
        let mut ragged = vec![0, 6, 0, 21, 0, 1, b'x', 0];
        ragged.extend_from_slice(&[0; 17]);
        assert!(read(&ragged, QemuVersion::V7_2).is_err());
        assert!(read(&[0, 6, 0, 4, 0, 1, b'x', 0], QemuVersion::V7_2).is_err());
        // RECV_BITMAP length must be n + 1.
        assert!(read(&[0, 10, 0, 3, 5, b'a', b'b'], QemuVersion::V7_2).is_err());
        assert!(read(&[0, 10, 0, 0], QemuVersion::V7_2).is_err());
        // Truncated payload.
        let e = read(&[0, 2, 0, 4, 0, 0], QemuVersion::V7_2).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Truncated { .. }));
    }
}
