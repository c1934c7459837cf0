use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "pl011", version = 2)]
struct Pl011 {
    read_count: u32,
    #[vmstate(validate = read_pos_ok)]
    read_pos: u32,
}

// Wrong: validate gets `&Self`, not `&mut Self`.
fn read_pos_ok(s: &mut Pl011, _version: u32) -> bool {
    s.read_pos < 16
}

fn main() {}
