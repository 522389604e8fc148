;; growpages.wat: grows its memory one page at a time, writing to each new
;; page, until memory.grow fails (at the memory limit), then allows. The
;; host's memory for it must stay near the limit, and growing must not cost
;; more than the call's deadline.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"allow\":true}")
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64)
    (local $old i32)
    (block $full
      (loop $grow
        (local.set $old (memory.grow (i32.const 1)))
        (br_if $full (i32.eq (local.get $old) (i32.const -1)))
        (i32.store8 (i32.shl (local.get $old) (i32.const 16)) (i32.const 1))
        (br $grow)))
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 14)))
)
