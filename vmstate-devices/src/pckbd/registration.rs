//! Registering a shared [`I8042`] with a savevm [`Registry`]: the three FULL
//! sections a QEMU `pc` machine writes for the keyboard controller, "ps2kbd",
//! "ps2mouse" and "pckbd", in that order.
//!
//! The keyboard and mouse live inside the controller (it wires their interrupt
//! lines), so the stock [`VmStateHandler`](vmstate_runtime::savevm::VmStateHandler),
//! which wants an `Arc<Mutex<T>>` per device, does not fit: [`PckbdSection`]
//! reaches into the one shared controller for the part its section carries.

use std::sync::{Arc, Mutex, MutexGuard};

use vmstate_runtime::savevm::{InstanceId, Registry, SaveVmHandlers, SectionReader, SectionWriter};
use vmstate_runtime::vmstate::DescribeSink;
use vmstate_runtime::{Error, Result, VmState, VmStateDescription};

use super::{Ps2Keyboard, Ps2Mouse, I8042};

/// Which part of the controller a section carries.
///
/// ```
/// use vmstate_devices::pckbd::PckbdPart;
///
/// let names: Vec<&str> = PckbdPart::ALL.iter().map(|p| p.idstr()).collect();
/// assert_eq!(names, ["ps2kbd", "ps2mouse", "pckbd"]);
/// assert_eq!(PckbdPart::Mouse.description().version_id, 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PckbdPart {
    /// The PS/2 keyboard: section "ps2kbd", version 3.
    Keyboard,
    /// The PS/2 mouse: section "ps2mouse", version 2.
    Mouse,
    /// The controller registers: section "pckbd", version 3.
    Controller,
}

impl PckbdPart {
    /// The three parts in QEMU's stream order (the PS/2 devices are realized, and
    /// so registered, inside the i8042's realize, before the i8042 itself).
    ///
    /// ```
    /// use vmstate_devices::pckbd::PckbdPart;
    ///
    /// assert_eq!(PckbdPart::ALL.len(), 3);
    /// assert_eq!(PckbdPart::ALL[0], PckbdPart::Keyboard);
    /// assert_eq!(PckbdPart::ALL[2], PckbdPart::Controller);
    /// ```
    pub const ALL: [PckbdPart; 3] = [PckbdPart::Keyboard, PckbdPart::Mouse, PckbdPart::Controller];

    /// The static description of the part's section body.
    ///
    /// ```
    /// use vmstate_devices::pckbd::PckbdPart;
    ///
    /// let d = PckbdPart::Keyboard.description();
    /// assert_eq!((d.name, d.version_id, d.minimum_version_id), ("ps2kbd", 3, 2));
    /// ```
    pub fn description(self) -> &'static VmStateDescription {
        match self {
            PckbdPart::Keyboard => Ps2Keyboard::DESCRIPTION,
            PckbdPart::Mouse => Ps2Mouse::DESCRIPTION,
            PckbdPart::Controller => I8042::DESCRIPTION,
        }
    }

    /// The section name on the wire ("ps2kbd", "ps2mouse", "pckbd").
    ///
    /// ```
    /// use vmstate_devices::pckbd::PckbdPart;
    ///
    /// assert_eq!(PckbdPart::Controller.idstr(), "pckbd");
    /// ```
    pub fn idstr(self) -> &'static str {
        self.description().name
    }
}

/// The [`SaveVmHandlers`] of one of the controller's sections: a FULL section
/// whose body is the [`PckbdPart`] of a shared [`I8042`].
///
/// Saving and loading lock the controller for the duration of the body. A
/// mutex poisoned by a panicking thread is reported as an error, never a panic.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use vmstate_devices::pckbd::{I8042, PckbdPart, PckbdSection};
///
/// let dev = Arc::new(Mutex::new(I8042::default()));
/// let sections: Vec<PckbdSection> = PckbdPart::ALL
///     .into_iter()
///     .map(|part| PckbdSection::new(Arc::clone(&dev), part))
///     .collect();
/// assert_eq!(sections[1].part(), PckbdPart::Mouse);
/// assert_eq!(Arc::strong_count(&dev), 4);
/// ```
pub struct PckbdSection {
    device: Arc<Mutex<I8042>>,
    part: PckbdPart,
}

impl std::fmt::Debug for PckbdSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PckbdSection")
            .field("part", &self.part)
            .finish_non_exhaustive()
    }
}

impl PckbdSection {
    /// The handler for `part` of the shared controller.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use vmstate_devices::pckbd::{I8042, PckbdPart, PckbdSection};
    ///
    /// let section = PckbdSection::new(Arc::new(Mutex::new(I8042::default())), PckbdPart::Keyboard);
    /// assert_eq!(section.part(), PckbdPart::Keyboard);
    /// assert!(format!("{section:?}").contains("Keyboard"));
    /// ```
    pub fn new(device: Arc<Mutex<I8042>>, part: PckbdPart) -> Self {
        PckbdSection { device, part }
    }

    /// Which part this section carries.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use vmstate_devices::pckbd::{I8042, PckbdPart, PckbdSection};
    ///
    /// let section = PckbdSection::new(Arc::new(Mutex::new(I8042::default())), PckbdPart::Controller);
    /// assert_eq!(section.part().idstr(), "pckbd");
    /// ```
    pub fn part(&self) -> PckbdPart {
        self.part
    }

    fn lock(&self) -> Result<MutexGuard<'_, I8042>> {
        self.device
            .lock()
            .map_err(|_| Error::poisoned("i8042 mutex poisoned by a panicking thread"))
    }
}

impl SaveVmHandlers for PckbdSection {
    fn has_full_section(&self) -> bool {
        true
    }

    fn description(&self) -> Option<&'static VmStateDescription> {
        Some(self.part.description())
    }

    fn save_state(&mut self, w: &mut SectionWriter) -> Result<()> {
        let dev = self.lock()?;
        match self.part {
            PckbdPart::Keyboard => dev.keyboard().save(w),
            PckbdPart::Mouse => dev.mouse().save(w),
            PckbdPart::Controller => dev.save(w),
        }
    }

    fn save_state_described(
        &mut self,
        w: &mut SectionWriter,
        sink: &mut dyn DescribeSink,
    ) -> Result<()> {
        let dev = self.lock()?;
        match self.part {
            PckbdPart::Keyboard => dev.keyboard().save_described(w, sink),
            PckbdPart::Mouse => dev.mouse().save_described(w, sink),
            PckbdPart::Controller => dev.save_described(w, sink),
        }
    }

    fn load_state(&mut self, r: &mut SectionReader, version_id: u32) -> Result<()> {
        let mut dev = self.lock()?;
        match self.part {
            PckbdPart::Keyboard => dev.keyboard_mut().load(r, version_id),
            PckbdPart::Mouse => dev.mouse_mut().load(r, version_id),
            PckbdPart::Controller => dev.load(r, version_id),
        }
    }
}

/// Registers the keyboard controller's three FULL sections, "ps2kbd" (v3),
/// "ps2mouse" (v2) and "pckbd" (v3), each with the next free instance id (0 in
/// a machine with one controller, as QEMU), in QEMU's order. Returns their
/// section ids in that order.
///
/// Register the destination's controller the same way: the loader finds the
/// sections by name and instance, and the stream order (keyboard and mouse
/// before the controller) lets the controller's `post_load` see the loaded
/// PS/2 state.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use vmstate_devices::pckbd::{self, I8042, KeyCode};
/// use vmstate_runtime::savevm::{LoadOptions, NoCommands, QemuVersion, Registry, StreamLoader, StreamWriter};
/// use vmstate_runtime::wire::Reader;
///
/// let src = Arc::new(Mutex::new(I8042::default()));
/// src.lock().unwrap().key_event(KeyCode::A, true);
/// let mut reg = Registry::new();
/// assert_eq!(pckbd::register(&mut reg, src.clone())?, [0, 1, 2]);
///
/// // A whole savevm stream: header (no configuration record), the three FULL
/// // sections, EOF, vmdesc.
/// let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
/// w.write_header()?;
/// w.complete_precopy(&mut reg)?;
/// let stream = w.into_inner()?;
///
/// let dst = Arc::new(Mutex::new(I8042::default()));
/// let mut dreg = Registry::new();
/// pckbd::register(&mut dreg, dst.clone())?;
/// let mut r = Reader::new(bytes::BytesMut::from(&stream[..]));
/// StreamLoader::new(LoadOptions::default().with_configuration(None)).load(&mut r, &mut dreg, &mut NoCommands)?;
/// assert_eq!(dst.lock().unwrap().read_port(0x60), 0x1c); // 'a' arrived
/// # Ok::<(), vmstate_runtime::Error>(())
/// ```
pub fn register(reg: &mut Registry, device: Arc<Mutex<I8042>>) -> Result<[u32; 3]> {
    let mut ids = [0; 3];
    for (id, part) in ids.iter_mut().zip(PckbdPart::ALL) {
        let desc = part.description();
        *id = reg.register_savevm_live(
            desc.name,
            InstanceId::Any,
            desc.version_id,
            Box::new(PckbdSection::new(device.clone(), part)),
        )?;
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pckbd::KeyCode;
    use bytes::BytesMut;
    use vmstate_runtime::savevm::{
        LoadOptions, NoCommands, QemuVersion, StreamLoader, StreamWriter,
    };
    use vmstate_runtime::to_bytes;
    use vmstate_runtime::wire::Reader;

    fn busy_controller() -> I8042 {
        let mut c = I8042::default();
        c.write_port(0x64, 0x60);
        c.write_port(0x60, 0x47); // translate, interrupts on
        c.write_port(0x60, 0xed);
        c.write_port(0x60, 0x02); // num lock LED
        c.write_port(0x64, 0xd4);
        c.write_port(0x60, 0xf4); // mouse: enable reporting
        c.write_port(0x64, 0xdd); // A20 off: outport subsection
        for k in [KeyCode::H, KeyCode::I] {
            c.key_event(k, true);
            c.key_event(k, false);
        }
        c.read_port(0x60);
        c
    }

    fn stream_of(reg: &mut Registry) -> Vec<u8> {
        let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
        w.write_header().unwrap();
        w.complete_precopy(reg).unwrap();
        w.into_inner().unwrap()
    }

    #[test]
    fn sections_in_qemu_order_with_qemu_versions_and_instances() {
        let mut reg = Registry::new();
        let ids = register(&mut reg, Arc::new(Mutex::new(I8042::default()))).unwrap();
        assert_eq!(ids, [0, 1, 2]);
        let got: Vec<_> = reg
            .entries()
            .map(|e| (e.idstr.as_str(), e.instance_id, e.version_id))
            .collect();
        assert_eq!(got, [("ps2kbd", 0, 3), ("ps2mouse", 0, 2), ("pckbd", 0, 3)]);
        // A second controller gets instance 1 of each.
        register(&mut reg, Arc::new(Mutex::new(I8042::default()))).unwrap();
        assert!(reg.find("pckbd", 1).is_some());
    }

    #[test]
    fn bodies_are_the_device_encodings_and_vmdesc_describes_them() {
        let dev = Arc::new(Mutex::new(busy_controller()));
        let mut reg = Registry::new();
        register(&mut reg, dev.clone()).unwrap();
        let stream = stream_of(&mut reg);
        let d = dev.lock().unwrap();
        for body in [
            to_bytes(d.keyboard()).unwrap(),
            to_bytes(d.mouse()).unwrap(),
            to_bytes(&*d).unwrap(),
        ] {
            assert!(
                stream.windows(body.len()).any(|w| w == body.as_slice()),
                "body missing from the stream"
            );
        }
        let text = String::from_utf8_lossy(&stream);
        for needle in [
            r#""name": "ps2kbd", "instance_id": 0, "vmsd_name": "ps2kbd", "version": 3"#,
            r#""name": "ps2mouse", "instance_id": 0, "vmsd_name": "ps2mouse", "version": 2"#,
            r#""name": "pckbd", "instance_id": 0, "vmsd_name": "pckbd", "version": 3"#,
            r#""vmsd_name": "ps2kbd/ledstate""#,
            r#""vmsd_name": "pckbd_outport""#,
        ] {
            assert!(text.contains(needle), "vmdesc lacks {needle}");
        }
    }

    #[test]
    fn round_trip_through_a_stream_is_byte_identical() {
        let src = Arc::new(Mutex::new(busy_controller()));
        let mut reg = Registry::new();
        register(&mut reg, src.clone()).unwrap();
        let stream = stream_of(&mut reg);

        let dst = Arc::new(Mutex::new(I8042::default()));
        let mut dreg = Registry::new();
        register(&mut dreg, dst.clone()).unwrap();
        let mut r = Reader::new(BytesMut::from(&stream[..]));
        StreamLoader::new(LoadOptions::default().with_configuration(None))
            .load(&mut r, &mut dreg, &mut NoCommands)
            .unwrap();

        let (mut s, mut d) = (src.lock().unwrap().clone(), dst.lock().unwrap().clone());
        assert_eq!(
            to_bytes(s.keyboard()).unwrap(),
            to_bytes(d.keyboard()).unwrap()
        );
        assert_eq!(to_bytes(s.mouse()).unwrap(), to_bytes(d.mouse()).unwrap());
        assert_eq!(to_bytes(&s).unwrap(), to_bytes(&d).unwrap());
        // And they behave the same from here on: same bytes at port 0x60.
        for _ in 0..8 {
            assert_eq!(s.read_port(0x64), d.read_port(0x64));
            assert_eq!(s.read_port(0x60), d.read_port(0x60));
        }
    }

    #[test]
    fn poisoned_controller_is_an_error_not_a_panic() {
        let dev = Arc::new(Mutex::new(I8042::default()));
        let d2 = dev.clone();
        let _ = std::thread::spawn(move || {
            let _g = d2.lock().unwrap();
            panic!("poison the mutex");
        })
        .join();
        let mut h = PckbdSection::new(dev, PckbdPart::Keyboard);
        assert_eq!(h.part(), PckbdPart::Keyboard);
        let mut w = SectionWriter::new(vmstate_runtime::savevm::SectionBuf::default());
        let e = h.save_state(&mut w).unwrap_err();
        assert!(e.to_string().contains("poisoned"), "{e}");
        let mut r = SectionReader::new(BytesMut::new());
        assert!(h.load_state(&mut r, 3).is_err());
    }

    #[test]
    fn part_metadata() {
        let names: Vec<_> = PckbdPart::ALL.iter().map(|p| p.idstr()).collect();
        assert_eq!(names, ["ps2kbd", "ps2mouse", "pckbd"]);
        assert_eq!(PckbdPart::Mouse.description().version_id, 2);
    }
}
