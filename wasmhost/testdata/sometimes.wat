;; sometimes.wat: misbehaves on demand, by point name: "loop" loops
;; forever, "trap" traps, "grow" asks for 1 GiB and writes past its memory;
;; anything else gets {"allow":true}. Tests use it to show that a failed
;; instance is replaced and the next call works.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"allow\":true}")
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param $p i32) (param $n i32) (param i32 i32) (result i64)
    (if (i32.eq (local.get $n) (i32.const 4))
      (then
        ;; "loop", "trap" and "grow" differ in their first byte
        (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 0x6c)) ;; 'l'
          (then (loop $forever (br $forever))))
        (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 0x74)) ;; 't'
          (then unreachable))
        (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 0x67)) ;; 'g'
          (then
            (drop (memory.grow (i32.const 16384)))
            (i32.store (i32.const 0x40000000) (i32.const 1))))))
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 14)))
)
