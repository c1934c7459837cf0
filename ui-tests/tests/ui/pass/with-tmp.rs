//! `with_tmp` (QEMU's VMSTATE_WITH_TMP) together with `skip`: the wire carries a
//! view computed from fields that are themselves not migrated.
use std::cell::Cell;

use vmstate_runtime::{from_bytes, to_bytes, Error, FieldLayout, VmState, VmStateTmp, WithTmp};

/// On the wire: the queue as head and length; in memory: head and tail.
#[derive(VmState, Default)]
#[vmstate(name = "virtio-queue/tmp")]
struct QueueTmp {
    head: u16,
    len: u16,
}

impl VmStateTmp<Queue> for QueueTmp {
    fn from_parent(q: &Queue) -> Result<Self, Error> {
        Ok(QueueTmp {
            head: q.head,
            len: q.tail.wrapping_sub(q.head),
        })
    }

    fn into_parent(self, q: &mut Queue) -> Result<(), Error> {
        q.head = self.head;
        q.tail = self.head.wrapping_add(self.len);
        Ok(())
    }
}

#[derive(VmState, Default, Debug)]
#[vmstate(name = "virtio-queue", version = 1)]
struct Queue {
    num: u16,
    #[vmstate(skip)]
    head: u16,
    #[vmstate(skip)]
    tail: u16,
    #[vmstate(with_tmp)]
    view: WithTmp<QueueTmp>,
    /// Host-only bookkeeping of any type can be skipped.
    #[vmstate(skip)]
    notifications: Cell<u64>,
}

fn main() {
    let q = Queue {
        num: 256,
        head: 10,
        tail: 14,
        ..Default::default()
    };
    let bytes = to_bytes(&q).unwrap();
    assert_eq!(bytes, [1, 0, 0, 10, 0, 4]);
    let back = from_bytes::<Queue>(&bytes, 1).unwrap();
    assert_eq!((back.num, back.head, back.tail), (256, 10, 14));
    assert_eq!(back.notifications.get(), 0);

    let fields = Queue::DESCRIPTION.fields;
    assert_eq!(
        fields.iter().find(|f| f.name == "view").unwrap().layout,
        FieldLayout::Tmp
    );
    assert_eq!(
        fields.iter().find(|f| f.name == "head").unwrap().layout,
        FieldLayout::Skipped
    );
}
