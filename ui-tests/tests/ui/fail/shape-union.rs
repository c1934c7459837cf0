use vmstate_runtime::VmState;

#[derive(VmState)]
#[vmstate(name = "reg", version = 1)]
union Reg {
    word: u32,
    bytes: [u8; 4],
}

fn main() {}
