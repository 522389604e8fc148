;; tablegrow.wat: asks table.grow for 2^26 more entries (512 MiB of host
;; memory in wazero) of a table declared without a maximum. It allows when
;; the host refused (table.grow returned -1), denies when it got them.
(module
  (table $t 1 funcref)
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"allow\":true}")
  (data (i32.const 32) "{\"allow\":false,\"reason\":\"table grew\"}")
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64)
    (if (i32.eq (table.grow $t (ref.null func) (i32.const 0x4000000)) (i32.const -1))
      (then (return (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 14)))))
    (i64.or (i64.shl (i64.const 32) (i64.const 32)) (i64.const 37)))
)
