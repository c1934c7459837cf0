// Expansion of the `device_codec` case in vmstate-derive/src/expand/output_tests/mod.rs
// (40 fields or variants). Regenerate: VMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests

const _: () = {
    use ::vmstate_runtime::__private as __vmstate;
    #[automatically_derived]
    impl __vmstate::VmState for Device {
        const DESCRIPTION: &'static __vmstate::VmStateDescription = &__vmstate::VmStateDescription {
            name: "bench",
            version_id: 2u32,
            minimum_version_id: 1u32,
            priority: __vmstate::MigrationPriority::Default,
            fields: &[
                __vmstate::FieldDescription::of_type(
                    "f01",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f02",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f03",
                    <u16 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f04",
                    <u16 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f05",
                    <u32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f06",
                    <u32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f07",
                    <u64 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f08",
                    <u64 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f09",
                    <i8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f10",
                    <i16 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f11",
                    <i32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f12",
                    <i64 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f13",
                    <bool as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f14",
                    <bool as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f15",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f16",
                    <u32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f17",
                    <u32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f18",
                    <u16 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f19",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f20",
                    <u64 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "regs",
                    <[u8; 32] as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "words",
                    <[u32; 16] as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f23",
                    <u32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f24",
                    <u16 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f25",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f26",
                    <i32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f27",
                    <u64 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f28",
                    <u32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f29",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f30",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "fifo_len",
                    <u32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::new(
                    "fifo",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                    __vmstate::FieldLayout::VarArray {
                        count_field: "fifo_len",
                        max: 256usize,
                    },
                ),
                __vmstate::FieldDescription::of_type(
                    "timer",
                    <Timer as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f34",
                    <u32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f35",
                    <u16 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f36",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                        "f37",
                        <u32 as __vmstate::VmStateField>::FIELD_TYPE,
                    )
                    .since(2u32),
                __vmstate::FieldDescription::of_type(
                    "f38",
                    <i16 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "f39",
                    <u64 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
            ],
            subsections: &[
                __vmstate::SubsectionDescription {
                    field: "extra",
                    description: <Extra as __vmstate::VmState>::DESCRIPTION,
                },
            ],
            hooks: __vmstate::Hooks {
                pre_save: false,
                post_save: false,
                pre_load: false,
                post_load: false,
            },
        };
        #[inline]
        fn save_with<
            __B: __vmstate::BufMut,
            __S: __vmstate::DescribeSink + ?__vmstate::Sized,
        >(
            &self,
            __w: &mut __vmstate::Writer<__B>,
            __sink: &mut __S,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <bool as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <bool as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <[u8; 32] as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <[u32; 16] as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Timer as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Extra as __vmstate::VmState>::DESCRIPTION;
            #[allow(unused)]
            const __VERSION: __vmstate::u32 = 2u32;
            let __desc = <Self as __vmstate::VmState>::DESCRIPTION;
            __vmstate::begin_vmsd(__sink, __desc);
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                if !__vmstate::is_recording(__sink)
                    && __w
                        .has_room(
                            0 + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u16 as __vmstate::PlainField>::WIRE_SIZE
                                + <u16 as __vmstate::PlainField>::WIRE_SIZE
                                + <u32 as __vmstate::PlainField>::WIRE_SIZE
                                + <u32 as __vmstate::PlainField>::WIRE_SIZE
                                + <u64 as __vmstate::PlainField>::WIRE_SIZE
                                + <u64 as __vmstate::PlainField>::WIRE_SIZE
                                + <i8 as __vmstate::PlainField>::WIRE_SIZE
                                + <i16 as __vmstate::PlainField>::WIRE_SIZE
                                + <i32 as __vmstate::PlainField>::WIRE_SIZE
                                + <i64 as __vmstate::PlainField>::WIRE_SIZE
                                + <bool as __vmstate::PlainField>::WIRE_SIZE
                                + <bool as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u32 as __vmstate::PlainField>::WIRE_SIZE
                                + <u32 as __vmstate::PlainField>::WIRE_SIZE
                                + <u16 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u64 as __vmstate::PlainField>::WIRE_SIZE
                                + <[u8; 32] as __vmstate::PlainField>::WIRE_SIZE
                                + <[u32; 16] as __vmstate::PlainField>::WIRE_SIZE
                                + <u32 as __vmstate::PlainField>::WIRE_SIZE
                                + <u16 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <i32 as __vmstate::PlainField>::WIRE_SIZE
                                + <u64 as __vmstate::PlainField>::WIRE_SIZE
                                + <u32 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u32 as __vmstate::PlainField>::WIRE_SIZE,
                        )
                {
                    let __buf = __w.get_mut();
                    <u8 as __vmstate::PlainField>::put_plain(&self.f01, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(&self.f02, __buf);
                    <u16 as __vmstate::PlainField>::put_plain(&self.f03, __buf);
                    <u16 as __vmstate::PlainField>::put_plain(&self.f04, __buf);
                    <u32 as __vmstate::PlainField>::put_plain(&self.f05, __buf);
                    <u32 as __vmstate::PlainField>::put_plain(&self.f06, __buf);
                    <u64 as __vmstate::PlainField>::put_plain(&self.f07, __buf);
                    <u64 as __vmstate::PlainField>::put_plain(&self.f08, __buf);
                    <i8 as __vmstate::PlainField>::put_plain(&self.f09, __buf);
                    <i16 as __vmstate::PlainField>::put_plain(&self.f10, __buf);
                    <i32 as __vmstate::PlainField>::put_plain(&self.f11, __buf);
                    <i64 as __vmstate::PlainField>::put_plain(&self.f12, __buf);
                    <bool as __vmstate::PlainField>::put_plain(&self.f13, __buf);
                    <bool as __vmstate::PlainField>::put_plain(&self.f14, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(&self.f15, __buf);
                    <u32 as __vmstate::PlainField>::put_plain(&self.f16, __buf);
                    <u32 as __vmstate::PlainField>::put_plain(&self.f17, __buf);
                    <u16 as __vmstate::PlainField>::put_plain(&self.f18, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(&self.f19, __buf);
                    <u64 as __vmstate::PlainField>::put_plain(&self.f20, __buf);
                    <[u8; 32] as __vmstate::PlainField>::put_plain(&self.regs, __buf);
                    <[u32; 16] as __vmstate::PlainField>::put_plain(&self.words, __buf);
                    <u32 as __vmstate::PlainField>::put_plain(&self.f23, __buf);
                    <u16 as __vmstate::PlainField>::put_plain(&self.f24, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(&self.f25, __buf);
                    <i32 as __vmstate::PlainField>::put_plain(&self.f26, __buf);
                    <u64 as __vmstate::PlainField>::put_plain(&self.f27, __buf);
                    <u32 as __vmstate::PlainField>::put_plain(&self.f28, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(&self.f29, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(&self.f30, __buf);
                    <u32 as __vmstate::PlainField>::put_plain(&self.fifo_len, __buf);
                } else {
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.f01, __w, __sink, __desc, 0usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.f02, __w, __sink, __desc, 1usize)?;
                    __vmstate::save_value::<
                        u16,
                        __B,
                        __S,
                    >(&self.f03, __w, __sink, __desc, 2usize)?;
                    __vmstate::save_value::<
                        u16,
                        __B,
                        __S,
                    >(&self.f04, __w, __sink, __desc, 3usize)?;
                    __vmstate::save_value::<
                        u32,
                        __B,
                        __S,
                    >(&self.f05, __w, __sink, __desc, 4usize)?;
                    __vmstate::save_value::<
                        u32,
                        __B,
                        __S,
                    >(&self.f06, __w, __sink, __desc, 5usize)?;
                    __vmstate::save_value::<
                        u64,
                        __B,
                        __S,
                    >(&self.f07, __w, __sink, __desc, 6usize)?;
                    __vmstate::save_value::<
                        u64,
                        __B,
                        __S,
                    >(&self.f08, __w, __sink, __desc, 7usize)?;
                    __vmstate::save_value::<
                        i8,
                        __B,
                        __S,
                    >(&self.f09, __w, __sink, __desc, 8usize)?;
                    __vmstate::save_value::<
                        i16,
                        __B,
                        __S,
                    >(&self.f10, __w, __sink, __desc, 9usize)?;
                    __vmstate::save_value::<
                        i32,
                        __B,
                        __S,
                    >(&self.f11, __w, __sink, __desc, 10usize)?;
                    __vmstate::save_value::<
                        i64,
                        __B,
                        __S,
                    >(&self.f12, __w, __sink, __desc, 11usize)?;
                    __vmstate::save_value::<
                        bool,
                        __B,
                        __S,
                    >(&self.f13, __w, __sink, __desc, 12usize)?;
                    __vmstate::save_value::<
                        bool,
                        __B,
                        __S,
                    >(&self.f14, __w, __sink, __desc, 13usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.f15, __w, __sink, __desc, 14usize)?;
                    __vmstate::save_value::<
                        u32,
                        __B,
                        __S,
                    >(&self.f16, __w, __sink, __desc, 15usize)?;
                    __vmstate::save_value::<
                        u32,
                        __B,
                        __S,
                    >(&self.f17, __w, __sink, __desc, 16usize)?;
                    __vmstate::save_value::<
                        u16,
                        __B,
                        __S,
                    >(&self.f18, __w, __sink, __desc, 17usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.f19, __w, __sink, __desc, 18usize)?;
                    __vmstate::save_value::<
                        u64,
                        __B,
                        __S,
                    >(&self.f20, __w, __sink, __desc, 19usize)?;
                    __vmstate::save_value::<
                        [u8; 32],
                        __B,
                        __S,
                    >(&self.regs, __w, __sink, __desc, 20usize)?;
                    __vmstate::save_value::<
                        [u32; 16],
                        __B,
                        __S,
                    >(&self.words, __w, __sink, __desc, 21usize)?;
                    __vmstate::save_value::<
                        u32,
                        __B,
                        __S,
                    >(&self.f23, __w, __sink, __desc, 22usize)?;
                    __vmstate::save_value::<
                        u16,
                        __B,
                        __S,
                    >(&self.f24, __w, __sink, __desc, 23usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.f25, __w, __sink, __desc, 24usize)?;
                    __vmstate::save_value::<
                        i32,
                        __B,
                        __S,
                    >(&self.f26, __w, __sink, __desc, 25usize)?;
                    __vmstate::save_value::<
                        u64,
                        __B,
                        __S,
                    >(&self.f27, __w, __sink, __desc, 26usize)?;
                    __vmstate::save_value::<
                        u32,
                        __B,
                        __S,
                    >(&self.f28, __w, __sink, __desc, 27usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.f29, __w, __sink, __desc, 28usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.f30, __w, __sink, __desc, 29usize)?;
                    __vmstate::save_value::<
                        u32,
                        __B,
                        __S,
                    >(&self.fifo_len, __w, __sink, __desc, 30usize)?;
                }
                __vmstate::save_field(
                    __w,
                    __sink,
                    __desc,
                    31usize,
                    __vmstate::Option::Some(self.fifo_len as __vmstate::i64),
                    |__w, __sink| __vmstate::save_varray_vec::<
                        u8,
                        __B,
                        __S,
                    >(&self.fifo, self.fifo_len as __vmstate::i64, 256usize, __w, __sink),
                )?;
                __vmstate::save_value::<
                    Timer,
                    __B,
                    __S,
                >(&self.timer, __w, __sink, __desc, 32usize)?;
                if !__vmstate::is_recording(__sink)
                    && __w
                        .has_room(
                            0 + <u32 as __vmstate::PlainField>::WIRE_SIZE
                                + <u16 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE,
                        )
                {
                    let __buf = __w.get_mut();
                    <u32 as __vmstate::PlainField>::put_plain(&self.f34, __buf);
                    <u16 as __vmstate::PlainField>::put_plain(&self.f35, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(&self.f36, __buf);
                } else {
                    __vmstate::save_value::<
                        u32,
                        __B,
                        __S,
                    >(&self.f34, __w, __sink, __desc, 33usize)?;
                    __vmstate::save_value::<
                        u16,
                        __B,
                        __S,
                    >(&self.f35, __w, __sink, __desc, 34usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.f36, __w, __sink, __desc, 35usize)?;
                }
                __vmstate::save_value::<
                    u32,
                    __B,
                    __S,
                >(&self.f37, __w, __sink, __desc, 36usize)?;
                if !__vmstate::is_recording(__sink)
                    && __w
                        .has_room(
                            0 + <i16 as __vmstate::PlainField>::WIRE_SIZE
                                + <u64 as __vmstate::PlainField>::WIRE_SIZE,
                        )
                {
                    let __buf = __w.get_mut();
                    <i16 as __vmstate::PlainField>::put_plain(&self.f38, __buf);
                    <u64 as __vmstate::PlainField>::put_plain(&self.f39, __buf);
                } else {
                    __vmstate::save_value::<
                        i16,
                        __B,
                        __S,
                    >(&self.f38, __w, __sink, __desc, 37usize)?;
                    __vmstate::save_value::<
                        u64,
                        __B,
                        __S,
                    >(&self.f39, __w, __sink, __desc, 38usize)?;
                }
                {
                    let __needed: fn(&Self) -> __vmstate::bool = Self::extra_needed;
                    if __needed(self) {
                        __vmstate::save_subsection::<
                            Extra,
                            __B,
                            __S,
                        >(&self.extra, __w, __sink)?;
                    }
                }
                __vmstate::Result::Ok(())
            })();
            __vmstate::end_vmsd(__sink);
            __result.map_err(|__e| __e.in_vmsd("bench"))
        }
        #[inline]
        fn load<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
            __version: __vmstate::u32,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <bool as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <bool as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <[u8; 32] as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <[u32; 16] as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Timer as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Extra as __vmstate::VmState>::DESCRIPTION;
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                <Self as __vmstate::VmState>::DESCRIPTION
                    .check_version(__version)
                    .map_err(|__e| __e.with_offset(__r.position()))?;
                if !__r
                    .consume_contiguous_if(
                        0 + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u16 as __vmstate::PlainField>::WIRE_SIZE
                            + <u16 as __vmstate::PlainField>::WIRE_SIZE
                            + <u32 as __vmstate::PlainField>::WIRE_SIZE
                            + <u32 as __vmstate::PlainField>::WIRE_SIZE
                            + <u64 as __vmstate::PlainField>::WIRE_SIZE
                            + <u64 as __vmstate::PlainField>::WIRE_SIZE
                            + <i8 as __vmstate::PlainField>::WIRE_SIZE
                            + <i16 as __vmstate::PlainField>::WIRE_SIZE
                            + <i32 as __vmstate::PlainField>::WIRE_SIZE
                            + <i64 as __vmstate::PlainField>::WIRE_SIZE
                            + <bool as __vmstate::PlainField>::WIRE_SIZE
                            + <bool as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u32 as __vmstate::PlainField>::WIRE_SIZE
                            + <u32 as __vmstate::PlainField>::WIRE_SIZE
                            + <u16 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u64 as __vmstate::PlainField>::WIRE_SIZE
                            + <[u8; 32] as __vmstate::PlainField>::WIRE_SIZE
                            + <[u32; 16] as __vmstate::PlainField>::WIRE_SIZE
                            + <u32 as __vmstate::PlainField>::WIRE_SIZE
                            + <u16 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <i32 as __vmstate::PlainField>::WIRE_SIZE
                            + <u64 as __vmstate::PlainField>::WIRE_SIZE
                            + <u32 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u32 as __vmstate::PlainField>::WIRE_SIZE,
                        |__b| {
                            let mut __run = __vmstate::PlainRun::new(__b);
                            __run.decode::<u8>(&mut self.f01);
                            __run.decode::<u8>(&mut self.f02);
                            __run.decode::<u16>(&mut self.f03);
                            __run.decode::<u16>(&mut self.f04);
                            __run.decode::<u32>(&mut self.f05);
                            __run.decode::<u32>(&mut self.f06);
                            __run.decode::<u64>(&mut self.f07);
                            __run.decode::<u64>(&mut self.f08);
                            __run.decode::<i8>(&mut self.f09);
                            __run.decode::<i16>(&mut self.f10);
                            __run.decode::<i32>(&mut self.f11);
                            __run.decode::<i64>(&mut self.f12);
                            __run.decode::<bool>(&mut self.f13);
                            __run.decode::<bool>(&mut self.f14);
                            __run.decode::<u8>(&mut self.f15);
                            __run.decode::<u32>(&mut self.f16);
                            __run.decode::<u32>(&mut self.f17);
                            __run.decode::<u16>(&mut self.f18);
                            __run.decode::<u8>(&mut self.f19);
                            __run.decode::<u64>(&mut self.f20);
                            __run.decode::<[u8; 32]>(&mut self.regs);
                            __run.decode::<[u32; 16]>(&mut self.words);
                            __run.decode::<u32>(&mut self.f23);
                            __run.decode::<u16>(&mut self.f24);
                            __run.decode::<u8>(&mut self.f25);
                            __run.decode::<i32>(&mut self.f26);
                            __run.decode::<u64>(&mut self.f27);
                            __run.decode::<u32>(&mut self.f28);
                            __run.decode::<u8>(&mut self.f29);
                            __run.decode::<u8>(&mut self.f30);
                            __run.decode::<u32>(&mut self.fifo_len);
                            __run.ok()
                        },
                    )
                {
                    __vmstate::load_value::<u8, __B>(&mut self.f01, __r, "f01")?;
                    __vmstate::load_value::<u8, __B>(&mut self.f02, __r, "f02")?;
                    __vmstate::load_value::<u16, __B>(&mut self.f03, __r, "f03")?;
                    __vmstate::load_value::<u16, __B>(&mut self.f04, __r, "f04")?;
                    __vmstate::load_value::<u32, __B>(&mut self.f05, __r, "f05")?;
                    __vmstate::load_value::<u32, __B>(&mut self.f06, __r, "f06")?;
                    __vmstate::load_value::<u64, __B>(&mut self.f07, __r, "f07")?;
                    __vmstate::load_value::<u64, __B>(&mut self.f08, __r, "f08")?;
                    __vmstate::load_value::<i8, __B>(&mut self.f09, __r, "f09")?;
                    __vmstate::load_value::<i16, __B>(&mut self.f10, __r, "f10")?;
                    __vmstate::load_value::<i32, __B>(&mut self.f11, __r, "f11")?;
                    __vmstate::load_value::<i64, __B>(&mut self.f12, __r, "f12")?;
                    __vmstate::load_value::<bool, __B>(&mut self.f13, __r, "f13")?;
                    __vmstate::load_value::<bool, __B>(&mut self.f14, __r, "f14")?;
                    __vmstate::load_value::<u8, __B>(&mut self.f15, __r, "f15")?;
                    __vmstate::load_value::<u32, __B>(&mut self.f16, __r, "f16")?;
                    __vmstate::load_value::<u32, __B>(&mut self.f17, __r, "f17")?;
                    __vmstate::load_value::<u16, __B>(&mut self.f18, __r, "f18")?;
                    __vmstate::load_value::<u8, __B>(&mut self.f19, __r, "f19")?;
                    __vmstate::load_value::<u64, __B>(&mut self.f20, __r, "f20")?;
                    __vmstate::load_value::<[u8; 32], __B>(&mut self.regs, __r, "regs")?;
                    __vmstate::load_value::<
                        [u32; 16],
                        __B,
                    >(&mut self.words, __r, "words")?;
                    __vmstate::load_value::<u32, __B>(&mut self.f23, __r, "f23")?;
                    __vmstate::load_value::<u16, __B>(&mut self.f24, __r, "f24")?;
                    __vmstate::load_value::<u8, __B>(&mut self.f25, __r, "f25")?;
                    __vmstate::load_value::<i32, __B>(&mut self.f26, __r, "f26")?;
                    __vmstate::load_value::<u64, __B>(&mut self.f27, __r, "f27")?;
                    __vmstate::load_value::<u32, __B>(&mut self.f28, __r, "f28")?;
                    __vmstate::load_value::<u8, __B>(&mut self.f29, __r, "f29")?;
                    __vmstate::load_value::<u8, __B>(&mut self.f30, __r, "f30")?;
                    __vmstate::load_value::<
                        u32,
                        __B,
                    >(&mut self.fifo_len, __r, "fifo_len")?;
                }
                __vmstate::in_field(
                    __vmstate::load_varray_vec::<
                        u8,
                        __B,
                    >(&mut self.fifo, self.fifo_len as __vmstate::i64, 256usize, __r),
                    "fifo",
                    __r,
                )?;
                __vmstate::load_value::<Timer, __B>(&mut self.timer, __r, "timer")?;
                if !__r
                    .consume_contiguous_if(
                        0 + <u32 as __vmstate::PlainField>::WIRE_SIZE
                            + <u16 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE,
                        |__b| {
                            let mut __run = __vmstate::PlainRun::new(__b);
                            __run.decode::<u32>(&mut self.f34);
                            __run.decode::<u16>(&mut self.f35);
                            __run.decode::<u8>(&mut self.f36);
                            __run.ok()
                        },
                    )
                {
                    __vmstate::load_value::<u32, __B>(&mut self.f34, __r, "f34")?;
                    __vmstate::load_value::<u16, __B>(&mut self.f35, __r, "f35")?;
                    __vmstate::load_value::<u8, __B>(&mut self.f36, __r, "f36")?;
                }
                if __version >= 2u32 {
                    __vmstate::load_value::<u32, __B>(&mut self.f37, __r, "f37")?;
                }
                if !__r
                    .consume_contiguous_if(
                        0 + <i16 as __vmstate::PlainField>::WIRE_SIZE
                            + <u64 as __vmstate::PlainField>::WIRE_SIZE,
                        |__b| {
                            let mut __run = __vmstate::PlainRun::new(__b);
                            __run.decode::<i16>(&mut self.f38);
                            __run.decode::<u64>(&mut self.f39);
                            __run.ok()
                        },
                    )
                {
                    __vmstate::load_value::<i16, __B>(&mut self.f38, __r, "f38")?;
                    __vmstate::load_value::<u64, __B>(&mut self.f39, __r, "f39")?;
                }
                let __subsections: &[&'static __vmstate::str] = &[
                    <Extra as __vmstate::VmState>::DESCRIPTION.name,
                ];
                while let __vmstate::Option::Some(__h) = __vmstate::next_subsection(
                    "bench",
                    __subsections,
                    __r,
                )? {
                    match __h.index {
                        0usize => {
                            __vmstate::load_subsection::<
                                Extra,
                                __B,
                            >(&mut self.extra, __h, __r)?
                        }
                        _ => {
                            return __vmstate::Result::Err(
                                __vmstate::subsection_index_out_of_range(),
                            );
                        }
                    }
                }
                __vmstate::Result::Ok(())
            })();
            __result.map_err(|__e| __e.in_vmsd("bench"))
        }
    }
    /// As a field of another struct: QEMU's VMSTATE_STRUCT (body inline, loaded
    /// at this type's own current version).
    #[automatically_derived]
    impl __vmstate::VmStateField for Device {
        const FIELD_TYPE: __vmstate::FieldType = __vmstate::struct_type(
            <Self as __vmstate::VmState>::DESCRIPTION,
        );
        #[inline]
        fn save_field<__B: __vmstate::BufMut>(
            &self,
            __w: &mut __vmstate::Writer<__B>,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            __vmstate::save_struct(self, __w)
        }
        #[inline]
        fn save_field_with<
            __B: __vmstate::BufMut,
            __S: __vmstate::DescribeSink + ?__vmstate::Sized,
        >(
            &self,
            __w: &mut __vmstate::Writer<__B>,
            __sink: &mut __S,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            <Self as __vmstate::VmState>::save_with(self, __w, __sink)
        }
        #[inline]
        fn load_field<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            __vmstate::load_struct(self, __r)
        }
    }
    #[automatically_derived]
    impl Device {
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        const fn __vmstate_static_checks() {
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <bool as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <bool as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <[u8; 32] as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <[u32; 16] as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Timer as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Extra as __vmstate::VmState>::DESCRIPTION;
            const _: () = __vmstate::assert!(
                __vmstate::str_eq(< Extra as __vmstate::VmState > ::DESCRIPTION.name,
                "\0vmstate-derive: invalid") || __vmstate::str_starts_with(< Extra as
                __vmstate::VmState > ::DESCRIPTION.name, "bench"),
                "subsection `extra`: its vmsd name must start with the parent's name \"bench\" (QEMU's loader only recognises subsections carrying the parent's prefix); name it e.g. \"bench/extra\""
            );
        }
    }
};
