use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "e1000", version = 2)]
struct E1000 {
    mac_reg: [u32; 16],
    #[vmstate(test = has_mit)]
    mit_ide: u32,
}

// Wrong: a test takes the version too, `fn(&Self, u32) -> bool`.
fn has_mit(s: &E1000) -> bool {
    s.mac_reg[0] != 0
}

fn main() {}
