//! Host key codes and their scancodes in the three AT scancode sets, plus the
//! i8042's set-2 → set-1 translation table.
//!
//! Key names follow QEMU's QKeyCode (what `sendkey` / QMP `send-key` accept); the
//! scancodes are the keycodemapdb values QEMU uses. `0` means "no code in this
//! set": the keyboard ignores such a key in that set.

/// Translation the i8042 applies to set-2 bytes when the command byte's KCC bit
/// (0x40) is set (index: set-2 byte; value: set-1 byte, before the break bit).
///
/// ```
/// use vmstate_devices::pckbd::ps2::translate_set2_to_set1;
/// assert_eq!(translate_set2_to_set1(0x1c), 0x1e); // 'a'
/// assert_eq!(translate_set2_to_set1(0xe0), 0xe0); // prefixes pass through
/// ```
pub const fn translate_set2_to_set1(code: u8) -> u8 {
    TRANSLATE[code as usize]
}

const TRANSLATE: [u8; 256] = {
    const LOW: [u8; 128] = [
        0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29,
        0x59, 0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11,
        0x03, 0x5b, 0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14,
        0x13, 0x06, 0x5d, 0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24,
        0x16, 0x08, 0x09, 0x5f, 0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35,
        0x26, 0x27, 0x19, 0x0c, 0x61, 0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36,
        0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76, 0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c,
        0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f, 0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45,
        0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
    ];
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < 128 { LOW[i] } else { i as u8 };
        i += 1;
    }
    // The two set-2 codes above 0x7f that have set-1 meanings: F7 and Alt+SysRq.
    t[0x83] = 0x41;
    t[0x84] = 0x54;
    t
};

macro_rules! key_table {
    ($($variant:ident = $name:literal: $s1:literal, $s2:literal, $s3:literal;)*) => {
        /// A host key, named after QEMU's QKeyCode.
        ///
        /// ```
        /// use vmstate_devices::pckbd::KeyCode;
        /// assert_eq!(KeyCode::from_qcode_name("a"), Some(KeyCode::A));
        /// assert_eq!(KeyCode::A.set2(), 0x1c);
        /// assert_eq!(KeyCode::Home.set1(), 0xe047);
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum KeyCode {
            $(
                #[doc = concat!("QKeyCode `", $name, "`.")]
                $variant,
            )*
        }

        impl KeyCode {
            /// Every key, in table order.
            ///
            /// ```
            /// use vmstate_devices::pckbd::KeyCode;
            ///
            /// assert!(KeyCode::ALL.contains(&KeyCode::Esc));
            /// // Every key's name leads back to it.
            /// for &k in KeyCode::ALL {
            ///     assert_eq!(KeyCode::from_qcode_name(k.qcode_name()), Some(k));
            /// }
            /// ```
            pub const ALL: &'static [KeyCode] = &[$(KeyCode::$variant),*];

            /// The QKeyCode name (`"a"`, `"ctrl_r"`, `"kp_enter"`).
            ///
            /// ```
            /// use vmstate_devices::pckbd::KeyCode;
            ///
            /// assert_eq!(KeyCode::A.qcode_name(), "a");
            /// assert_eq!(KeyCode::CtrlR.qcode_name(), "ctrl_r");
            /// ```
            pub const fn qcode_name(self) -> &'static str {
                match self { $(KeyCode::$variant => $name),* }
            }

            /// Looks a key up by its QKeyCode name.
            ///
            /// ```
            /// use vmstate_devices::pckbd::KeyCode;
            ///
            /// assert_eq!(KeyCode::from_qcode_name("esc"), Some(KeyCode::Esc));
            /// assert_eq!(KeyCode::from_qcode_name("no_such_key"), None);
            /// ```
            pub fn from_qcode_name(name: &str) -> Option<KeyCode> {
                match name { $($name => Some(KeyCode::$variant),)* _ => None }
            }

            /// Scancode set 1 make code; 0xe0xx for extended keys, 0 if none.
            ///
            /// ```
            /// use vmstate_devices::pckbd::KeyCode;
            ///
            /// assert_eq!(KeyCode::Esc.set1(), 0x01);
            /// assert_eq!(KeyCode::CtrlR.set1(), 0xe01d); // extended key
            /// ```
            pub const fn set1(self) -> u16 {
                match self { $(KeyCode::$variant => $s1),* }
            }

            /// Scancode set 2 make code; 0xe0xx for extended keys, 0 if none.
            ///
            /// ```
            /// use vmstate_devices::pckbd::KeyCode;
            ///
            /// assert_eq!(KeyCode::Esc.set2(), 0x76);
            /// assert_eq!(KeyCode::AltR.set2(), 0xe011);
            /// assert_eq!(KeyCode::Menu.set1(), 0xe01e);
            /// ```
            pub const fn set2(self) -> u16 {
                match self { $(KeyCode::$variant => $s2),* }
            }

            /// Scancode set 3 code, 0 if none.
            ///
            /// ```
            /// use vmstate_devices::pckbd::KeyCode;
            ///
            /// assert_eq!(KeyCode::Esc.set3(), 0x08);
            /// assert_eq!(KeyCode::Power.set3(), 0); // no set-3 code
            /// ```
            pub const fn set3(self) -> u8 {
                match self { $(KeyCode::$variant => $s3),* }
            }
        }
    };
}

key_table! {
    Shift = "shift": 0x2a, 0x12, 0x12;
    ShiftR = "shift_r": 0x36, 0x59, 0x59;
    Alt = "alt": 0x38, 0x11, 0x19;
    AltR = "alt_r": 0xe038, 0xe011, 0x39;
    Ctrl = "ctrl": 0x1d, 0x14, 0x11;
    CtrlR = "ctrl_r": 0xe01d, 0xe014, 0x58;
    Menu = "menu": 0xe01e, 0, 0x91;
    Esc = "esc": 0x01, 0x76, 0x08;
    Num1 = "1": 0x02, 0x16, 0x16;
    Num2 = "2": 0x03, 0x1e, 0x1e;
    Num3 = "3": 0x04, 0x26, 0x26;
    Num4 = "4": 0x05, 0x25, 0x25;
    Num5 = "5": 0x06, 0x2e, 0x2e;
    Num6 = "6": 0x07, 0x36, 0x36;
    Num7 = "7": 0x08, 0x3d, 0x3d;
    Num8 = "8": 0x09, 0x3e, 0x3e;
    Num9 = "9": 0x0a, 0x46, 0x46;
    Num0 = "0": 0x0b, 0x45, 0x45;
    Minus = "minus": 0x0c, 0x4e, 0x4e;
    Equal = "equal": 0x0d, 0x55, 0x55;
    Backspace = "backspace": 0x0e, 0x66, 0x66;
    Tab = "tab": 0x0f, 0x0d, 0x0d;
    Q = "q": 0x10, 0x15, 0x15;
    W = "w": 0x11, 0x1d, 0x1d;
    E = "e": 0x12, 0x24, 0x24;
    R = "r": 0x13, 0x2d, 0x2d;
    T = "t": 0x14, 0x2c, 0x2c;
    Y = "y": 0x15, 0x35, 0x35;
    U = "u": 0x16, 0x3c, 0x3c;
    I = "i": 0x17, 0x43, 0x43;
    O = "o": 0x18, 0x44, 0x44;
    P = "p": 0x19, 0x4d, 0x4d;
    BracketLeft = "bracket_left": 0x1a, 0x54, 0x54;
    BracketRight = "bracket_right": 0x1b, 0x5b, 0x5b;
    Ret = "ret": 0x1c, 0x5a, 0x5a;
    A = "a": 0x1e, 0x1c, 0x1c;
    S = "s": 0x1f, 0x1b, 0x1b;
    D = "d": 0x20, 0x23, 0x23;
    F = "f": 0x21, 0x2b, 0x2b;
    G = "g": 0x22, 0x34, 0x34;
    H = "h": 0x23, 0x33, 0x33;
    J = "j": 0x24, 0x3b, 0x3b;
    K = "k": 0x25, 0x42, 0x42;
    L = "l": 0x26, 0x4b, 0x4b;
    Semicolon = "semicolon": 0x27, 0x4c, 0x4c;
    Apostrophe = "apostrophe": 0x28, 0x52, 0x52;
    GraveAccent = "grave_accent": 0x29, 0x0e, 0x0e;
    Backslash = "backslash": 0x2b, 0x5d, 0x5c;
    Z = "z": 0x2c, 0x1a, 0x1a;
    X = "x": 0x2d, 0x22, 0x22;
    C = "c": 0x2e, 0x21, 0x21;
    V = "v": 0x2f, 0x2a, 0x2a;
    B = "b": 0x30, 0x32, 0x32;
    N = "n": 0x31, 0x31, 0x31;
    M = "m": 0x32, 0x3a, 0x3a;
    Comma = "comma": 0x33, 0x41, 0x41;
    Dot = "dot": 0x34, 0x49, 0x49;
    Slash = "slash": 0x35, 0x4a, 0x4a;
    Asterisk = "asterisk": 0x37, 0x7c, 0x7e;
    Spc = "spc": 0x39, 0x29, 0x29;
    CapsLock = "caps_lock": 0x3a, 0x58, 0x14;
    F1 = "f1": 0x3b, 0x05, 0x07;
    F2 = "f2": 0x3c, 0x06, 0x0f;
    F3 = "f3": 0x3d, 0x04, 0x17;
    F4 = "f4": 0x3e, 0x0c, 0x1f;
    F5 = "f5": 0x3f, 0x03, 0x27;
    F6 = "f6": 0x40, 0x0b, 0x2f;
    F7 = "f7": 0x41, 0x83, 0x37;
    F8 = "f8": 0x42, 0x0a, 0x3f;
    F9 = "f9": 0x43, 0x01, 0x47;
    F10 = "f10": 0x44, 0x09, 0x4f;
    NumLock = "num_lock": 0x45, 0x77, 0x76;
    ScrollLock = "scroll_lock": 0x46, 0x7e, 0x5f;
    KpDivide = "kp_divide": 0xe035, 0xe04a, 0x4a;
    KpMultiply = "kp_multiply": 0x37, 0x7c, 0x7e;
    KpSubtract = "kp_subtract": 0x4a, 0x7b, 0x4e;
    KpAdd = "kp_add": 0x4e, 0x79, 0x7c;
    KpEnter = "kp_enter": 0xe01c, 0xe05a, 0x79;
    KpDecimal = "kp_decimal": 0x53, 0x71, 0x71;
    // Never used as such: QEMU's input layer turns SysRq into Print before any
    // device sees it (see `Ps2Keyboard::key_event`).
    Sysrq = "sysrq": 0x54, 0x7f, 0x57;
    Kp0 = "kp_0": 0x52, 0x70, 0x70;
    Kp1 = "kp_1": 0x4f, 0x69, 0x69;
    Kp2 = "kp_2": 0x50, 0x72, 0x72;
    Kp3 = "kp_3": 0x51, 0x7a, 0x7a;
    Kp4 = "kp_4": 0x4b, 0x6b, 0x6b;
    Kp5 = "kp_5": 0x4c, 0x73, 0x73;
    Kp6 = "kp_6": 0x4d, 0x74, 0x74;
    Kp7 = "kp_7": 0x47, 0x6c, 0x6c;
    Kp8 = "kp_8": 0x48, 0x75, 0x75;
    Kp9 = "kp_9": 0x49, 0x7d, 0x7d;
    Less = "less": 0x56, 0x61, 0x13;
    F11 = "f11": 0x57, 0x78, 0x56;
    F12 = "f12": 0x58, 0x07, 0x5e;
    Print = "print": 0x54, 0x7f, 0x57;
    Home = "home": 0xe047, 0xe06c, 0x6e;
    Pgup = "pgup": 0xe049, 0xe07d, 0x6f;
    Pgdn = "pgdn": 0xe051, 0xe07a, 0x6d;
    End = "end": 0xe04f, 0xe069, 0x65;
    Left = "left": 0xe04b, 0xe06b, 0x61;
    Up = "up": 0xe048, 0xe075, 0x63;
    Down = "down": 0xe050, 0xe072, 0x60;
    Right = "right": 0xe04d, 0xe074, 0x6a;
    Insert = "insert": 0xe052, 0xe070, 0x67;
    Delete = "delete": 0xe053, 0xe071, 0x64;
    Stop = "stop": 0xe068, 0xe028, 0x0a;
    Again = "again": 0xe005, 0, 0x0b;
    Props = "props": 0xe006, 0, 0x0c;
    Undo = "undo": 0xe007, 0, 0x10;
    Front = "front": 0xe00c, 0, 0;
    Copy = "copy": 0xe078, 0, 0x18;
    Open = "open": 0x64, 0, 0x20;
    Paste = "paste": 0x65, 0, 0x28;
    Find = "find": 0xe041, 0, 0x30;
    Cut = "cut": 0xe03c, 0, 0x38;
    Lf = "lf": 0x5b, 0, 0;
    Help = "help": 0xe075, 0, 0x09;
    MetaL = "meta_l": 0xe05b, 0xe01f, 0x8b;
    MetaR = "meta_r": 0xe05c, 0xe027, 0x8c;
    Compose = "compose": 0xe05d, 0xe02f, 0x8d;
    Pause = "pause": 0xe046, 0xe077, 0x62;
    Ro = "ro": 0x73, 0x51, 0;
    Hiragana = "hiragana": 0x77, 0x62, 0x87;
    Henkan = "henkan": 0x79, 0x64, 0x86;
    Yen = "yen": 0x7d, 0x6a, 0x5d;
    Muhenkan = "muhenkan": 0x7b, 0x67, 0x85;
    Katakanahiragana = "katakanahiragana": 0x70, 0x13, 0x87;
    KpComma = "kp_comma": 0x7e, 0x6d, 0;
    KpEquals = "kp_equals": 0x59, 0x0f, 0;
    Power = "power": 0xe05e, 0xe037, 0;
    Sleep = "sleep": 0xe05f, 0xe03f, 0;
    Wake = "wake": 0xe063, 0xe05e, 0;
    AudioNext = "audionext": 0xe019, 0xe04d, 0x93;
    AudioPrev = "audioprev": 0xe010, 0xe015, 0x94;
    AudioStop = "audiostop": 0xe024, 0xe03b, 0x98;
    AudioPlay = "audioplay": 0xe022, 0xe034, 0;
    AudioMute = "audiomute": 0xe020, 0xe023, 0x9c;
    VolumeUp = "volumeup": 0xe030, 0xe032, 0x95;
    VolumeDown = "volumedown": 0xe02e, 0xe021, 0x9d;
    MediaSelect = "mediaselect": 0xe06d, 0xe050, 0;
    Mail = "mail": 0xe06c, 0xe048, 0;
    Calculator = "calculator": 0xe021, 0xe02b, 0xa3;
    Computer = "computer": 0xe06b, 0xe040, 0;
    AcHome = "ac_home": 0xe032, 0xe03a, 0x97;
    AcBack = "ac_back": 0xe06a, 0xe038, 0;
    AcForward = "ac_forward": 0xe069, 0xe030, 0;
    AcRefresh = "ac_refresh": 0xe067, 0xe020, 0;
    AcBookmarks = "ac_bookmarks": 0xe066, 0xe018, 0;
    // QEMU 7.2's keycodemapdb: Hangeul/Hanja have set-1 codes 0x72/0x71 (an
    // ordinary make/break pair) and no set-2 or set-3 code (checked live).
    Lang1 = "lang1": 0x72, 0, 0;
    Lang2 = "lang2": 0x71, 0, 0;
    F13 = "f13": 0x5d, 0x2f, 0x7f;
    F14 = "f14": 0x5e, 0x37, 0x80;
    F15 = "f15": 0x5f, 0x3f, 0x81;
    F16 = "f16": 0x55, 0, 0x82;
    F17 = "f17": 0xe003, 0, 0x83;
    F18 = "f18": 0xe077, 0, 0;
    F19 = "f19": 0xe004, 0, 0;
    F20 = "f20": 0x5a, 0, 0;
    F21 = "f21": 0x74, 0, 0;
    F22 = "f22": 0xe079, 0, 0;
    F23 = "f23": 0x6d, 0, 0;
    F24 = "f24": 0x6f, 0, 0;
}

/// Modifier bits the keyboard tracks for the Pause and Print special sequences.
pub(crate) mod modifier {
    pub const CTRL_L: u8 = 1 << 0;
    pub const SHIFT_L: u8 = 1 << 1;
    pub const ALT_L: u8 = 1 << 2;
    pub const CTRL_R: u8 = 1 << 3;
    pub const SHIFT_R: u8 = 1 << 4;
    pub const ALT_R: u8 = 1 << 5;
}

impl KeyCode {
    /// The modifier bit this key sets while held (0 for other keys).
    pub(crate) const fn modifier_bit(self) -> u8 {
        match self {
            KeyCode::Ctrl => modifier::CTRL_L,
            KeyCode::CtrlR => modifier::CTRL_R,
            KeyCode::Shift => modifier::SHIFT_L,
            KeyCode::ShiftR => modifier::SHIFT_R,
            KeyCode::Alt => modifier::ALT_L,
            KeyCode::AltR => modifier::ALT_R,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &k in KeyCode::ALL {
            assert!(seen.insert(k.qcode_name()), "duplicate {}", k.qcode_name());
            assert_eq!(KeyCode::from_qcode_name(k.qcode_name()), Some(k));
        }
        assert_eq!(KeyCode::from_qcode_name("no_such_key"), None);
    }

    /// Where a key has both codes, set 1 is the i8042 translation of set 2 (same
    /// prefix): a consistency check on the table. Pause is the exception (its
    /// table codes are never sent in sets 1 and 2: it has special sequences).
    #[test]
    fn set1_is_the_translation_of_set2() {
        for &k in KeyCode::ALL {
            let (s1, s2) = (k.set1(), k.set2());
            if s1 == 0 || s2 == 0 || k == KeyCode::Pause {
                continue;
            }
            assert_eq!(s1 >> 8, s2 >> 8, "{k:?} prefix");
            assert_eq!(
                translate_set2_to_set1((s2 & 0xff) as u8),
                (s1 & 0xff) as u8,
                "{k:?}"
            );
        }
    }
}
