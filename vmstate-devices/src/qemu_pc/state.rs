//! A copy of what a `pc` machine holds, to compare two machines (a migration's
//! destination with its source's own save).

use super::{QemuPc, QemuPcError};
use crate::pckbd::PckbdPart;

/// RAM by block and every FULL section's body, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineState {
    /// (block idstr, contents), in RAM-list order.
    pub ram: Vec<(String, Vec<u8>)>,
    /// (section idstr, instance, body): the models' bodies as they save them,
    /// the opaque sections' as carried.
    pub sections: Vec<(String, u32, Vec<u8>)>,
}

impl MachineState {
    pub(super) fn of(pc: &QemuPc) -> Result<MachineState, QemuPcError> {
        let ram = {
            let ram = pc
                .ram
                .lock()
                .map_err(|_| vmstate_runtime::Error::poisoned("RAM poisoned"))?;
            ram.blocks()
                .iter()
                .map(|b| Ok((b.idstr().to_string(), b.to_vec()?)))
                .collect::<Result<Vec<_>, QemuPcError>>()?
        };
        let dev = pc
            .i8042
            .lock()
            .map_err(|_| vmstate_runtime::Error::poisoned("i8042 poisoned"))?;
        let mut sections = Vec::new();
        let mut opaque = pc.opaque.iter();
        for (idstr, instance, _) in &pc.sections {
            if let Some((_, _, model)) = pc
                .virtio
                .iter()
                .find(|(n, i, _)| n == idstr && i == instance)
            {
                sections.push((idstr.clone(), *instance, model.body()?));
                continue;
            }
            let body = match PckbdPart::ALL.into_iter().find(|p| p.idstr() == idstr) {
                Some(PckbdPart::Keyboard) => vmstate_runtime::to_bytes(dev.keyboard())?,
                Some(PckbdPart::Mouse) => vmstate_runtime::to_bytes(dev.mouse())?,
                Some(PckbdPart::Controller) => vmstate_runtime::to_bytes(&*dev)?,
                None => match opaque.next() {
                    Some(o) => o.body()?,
                    None => Vec::new(),
                },
            };
            sections.push((idstr.clone(), *instance, body));
        }
        Ok(MachineState { ram, sections })
    }

    /// The first difference from `other`, said in words; `None` when equal.
    pub fn first_difference(&self, other: &MachineState) -> Option<String> {
        for ((a, x), (b, y)) in self.ram.iter().zip(&other.ram) {
            if a != b {
                return Some(format!("RAM block {a} vs {b}"));
            }
            if x != y {
                let page = x.iter().zip(y).position(|(p, q)| p != q).unwrap_or(0) / 4096;
                return Some(format!("RAM block {a}: differs at page {page}"));
            }
        }
        if self.ram.len() != other.ram.len() {
            return Some("RAM block count differs".into());
        }
        for ((n, i, x), (m, j, y)) in self.sections.iter().zip(&other.sections) {
            if (n, i) != (m, j) {
                return Some(format!("section {n}/{i} vs {m}/{j}"));
            }
            if x != y {
                return Some(format!("section {n}/{i}: bodies differ"));
            }
        }
        if self.sections.len() != other.sections.len() {
            return Some("section count differs".into());
        }
        None
    }
}
