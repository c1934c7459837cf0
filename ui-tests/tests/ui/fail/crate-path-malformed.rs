use vmstate_runtime::VmState;

// `crate = "path"` names where the runtime is (for a VMM that re-exports it); each
// malformed value is reported at the value, and the key is a container key.
#[derive(VmState, Default)]
#[vmstate(name = "a", crate = 5)]
struct NotAPath {
    x: u8,
}

#[derive(VmState, Default)]
#[vmstate(name = "b", crate = "my vmm::vmstate")]
struct StringNotAPath {
    x: u8,
}

#[derive(VmState, Default)]
#[vmstate(name = "c", crate)]
struct NoValue {
    x: u8,
}

#[derive(VmState, Default, Clone, Copy)]
#[vmstate(crate = <Vmm as Runtime>::path)]
#[repr(u8)]
enum Qualified {
    #[default]
    Off = 0,
}

#[derive(VmState, Default)]
#[vmstate(name = "d")]
struct OnAField {
    #[vmstate(crate = "my_vmm::vmstate")]
    x: u8,
}

fn main() {}
