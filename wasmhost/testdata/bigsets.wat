;; bigsets.wat: registers, through husk.set_new, sets of one 32 MiB string
;; each, as many as the host takes (at most 8), in husk_decide. It allows
;; when the host refused one (set_new returned -1), denies when it took all
;; 8 (256 MiB of host memory beyond the module's own).
(module
  (import "husk" "set_new" (func $set_new (param i32 i32) (result i32)))
  (memory (export "memory") 520)
  (data (i32.const 16) "{\"allow\":true}")
  (data (i32.const 32) "{\"allow\":false,\"reason\":\"8 sets of 32 MiB\"}")
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64)
    (local $i i32)
    ;; ["xxx…x"] at 64 KiB: 32 MiB of x between the quotes.
    (i32.store8 (i32.const 0x10000) (i32.const 0x5b)) ;; [
    (i32.store8 (i32.const 0x10001) (i32.const 0x22)) ;; "
    (memory.fill (i32.const 0x10002) (i32.const 0x78) (i32.const 0x2000000))
    (i32.store8 (i32.const 0x2010002) (i32.const 0x22))
    (i32.store8 (i32.const 0x2010003) (i32.const 0x5d)) ;; ]
    (block $refused
      (loop $more
        (br_if $refused (i32.eq (call $set_new (i32.const 0x10000) (i32.const 0x2000004)) (i32.const -1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $i) (i32.const 8))))
      (return (i64.or (i64.shl (i64.const 32) (i64.const 32)) (i64.const 43))))
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 14)))
)
