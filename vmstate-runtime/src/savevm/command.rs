//! QEMU_VM_COMMAND records: `0x08, be16 cmd, be16 len, payload` (savevm.c
//! `qemu_savevm_command_send` / `loadvm_process_command`).

use bytes::{Buf, BufMut};

use super::format::{QemuVersion, RecordType};
use crate::error::{Error, ErrorKind, Result};
use crate::wire::{Reader, Writer};

/// MIG_CMD numbers.
pub mod cmd {
    /// Destination opens the return path.
    pub const OPEN_RETURN_PATH: u16 = 1;
    /// Request a PONG with the same value.
    pub const PING: u16 = 2;
    /// Postcopy may follow: page sizes.
    pub const POSTCOPY_ADVISE: u16 = 3;
    /// Destination starts listening for postcopy pages.
    pub const POSTCOPY_LISTEN: u16 = 4;
    /// Destination starts the guest.
    pub const POSTCOPY_RUN: u16 = 5;
    /// Discard ranges of a RAMBlock.
    pub const POSTCOPY_RAM_DISCARD: u16 = 6;
    /// A nested stream of the given length follows.
    pub const PACKAGED: u16 = 7;
    /// Enable COLO.
    pub const ENABLE_COLO: u16 = 8;
    /// Postcopy recovery: resume.
    pub const POSTCOPY_RESUME: u16 = 9;
    /// Postcopy recovery: request a received bitmap.
    pub const RECV_BITMAP: u16 = 10;
    /// Switchover starts (QEMU 10.x only).
    pub const SWITCHOVER_START: u16 = 11;
}

/// Most ranges QEMU puts in one discard command.
pub const MAX_DISCARDS_PER_COMMAND: usize = 12;

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
    /// Its MIG_CMD number.
    pub fn number(&self) -> u16 {
        match self {
            Command::OpenReturnPath => cmd::OPEN_RETURN_PATH,
            Command::Ping(_) => cmd::PING,
            Command::PostcopyAdvise(_) => cmd::POSTCOPY_ADVISE,
            Command::PostcopyListen => cmd::POSTCOPY_LISTEN,
            Command::PostcopyRun => cmd::POSTCOPY_RUN,
            Command::PostcopyRamDiscard { .. } => cmd::POSTCOPY_RAM_DISCARD,
            Command::Packaged(_) => cmd::PACKAGED,
            Command::EnableColo => cmd::ENABLE_COLO,
            Command::PostcopyResume => cmd::POSTCOPY_RESUME,
            Command::RecvBitmap(_) => cmd::RECV_BITMAP,
            Command::SwitchoverStart => cmd::SWITCHOVER_START,
        }
    }

    /// QEMU's name for it (for messages).
    pub fn name(&self) -> &'static str {
        name_of(self.number())
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
                payload.write_u8(0)?; // version
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
            Error::invalid(format!(
                "{} payload of {} bytes does not fit a be16 length",
                self.name(),
                payload.len()
            ))
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
        if number == 0 || number >= version.mig_cmd_max() {
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
        let name = name_of(number);
        let fixed = |expected: u16| -> Result<()> {
            if payload.len() != usize::from(expected) {
                return Err(Error::new(ErrorKind::BadCommandLength {
                    name,
                    len: payload.len(),
                    expected: expected.into(),
                }));
            }
            Ok(())
        };
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let be64 = |b: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[..8]);
            u64::from_be_bytes(a)
        };
        let malformed = |reason: String| Error::new(ErrorKind::MalformedCommand { name, reason });
        Ok(match number {
            cmd::OPEN_RETURN_PATH => {
                fixed(0)?;
                Command::OpenReturnPath
            }
            cmd::PING => {
                fixed(4)?;
                Command::Ping(be32(payload))
            }
            cmd::POSTCOPY_ADVISE => match payload.len() {
                0 => Command::PostcopyAdvise(None),
                16 => Command::PostcopyAdvise(Some(PostcopyAdvise {
                    host_page_summary: be64(payload),
                    target_page_size: be64(&payload[8..]),
                })),
                n => return Err(malformed(format!("length {n}, expected 0 or 16"))),
            },
            cmd::POSTCOPY_LISTEN => {
                fixed(0)?;
                Command::PostcopyListen
            }
            cmd::POSTCOPY_RUN => {
                fixed(0)?;
                Command::PostcopyRun
            }
            cmd::POSTCOPY_RAM_DISCARD => {
                // version, name length, name (>= 1 byte), NUL, then >= 1 range.
                if payload.len() < 1 + 1 + 1 + 1 + 16 {
                    return Err(malformed(format!("length {} is too short", payload.len())));
                }
                if payload[0] != 0 {
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
                if !rest.len().is_multiple_of(16) {
                    return Err(malformed(format!(
                        "{} bytes of ranges is not a multiple of 16",
                        rest.len()
                    )));
                }
                Command::PostcopyRamDiscard {
                    block: String::from_utf8_lossy(&payload[2..2 + n]).into_owned(),
                    ranges: rest
                        .chunks_exact(16)
                        .map(|c| (be64(c), be64(&c[8..])))
                        .collect(),
                }
            }
            cmd::PACKAGED => {
                fixed(4)?;
                Command::Packaged(be32(payload))
            }
            cmd::ENABLE_COLO => {
                fixed(0)?;
                Command::EnableColo
            }
            cmd::POSTCOPY_RESUME => {
                fixed(0)?;
                Command::PostcopyResume
            }
            cmd::RECV_BITMAP => {
                let n = payload.first().copied().unwrap_or(0) as usize;
                if payload.is_empty() || payload.len() != n + 1 {
                    return Err(malformed(format!(
                        "length {} does not match a name of {n} bytes",
                        payload.len()
                    )));
                }
                Command::RecvBitmap(String::from_utf8_lossy(&payload[1..]).into_owned())
            }
            cmd::SWITCHOVER_START => {
                fixed(0)?;
                Command::SwitchoverStart
            }
            other => {
                return Err(Error::new(ErrorKind::UnknownCommand {
                    cmd: other,
                    len: payload.len() as u16,
                }))
            }
        })
    }
}

fn name_of(number: u16) -> &'static str {
    match number {
        cmd::OPEN_RETURN_PATH => "OPEN_RETURN_PATH",
        cmd::PING => "PING",
        cmd::POSTCOPY_ADVISE => "POSTCOPY_ADVISE",
        cmd::POSTCOPY_LISTEN => "POSTCOPY_LISTEN",
        cmd::POSTCOPY_RUN => "POSTCOPY_RUN",
        cmd::POSTCOPY_RAM_DISCARD => "POSTCOPY_RAM_DISCARD",
        cmd::PACKAGED => "PACKAGED",
        cmd::ENABLE_COLO => "ENABLE_COLO",
        cmd::POSTCOPY_RESUME => "POSTCOPY_RESUME",
        cmd::RECV_BITMAP => "RECV_BITMAP",
        cmd::SWITCHOVER_START => "SWITCHOVER_START",
        _ => "unknown command",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(c: Command) {
        let mut w = Writer::new(Vec::new());
        c.write(&mut w).unwrap();
        let bytes = w.into_inner();
        assert_eq!(bytes[0], 0x08);
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
