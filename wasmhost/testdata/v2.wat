;; v2.wat: built for a hook ABI version husk does not know.
(module
  (memory (export "memory") 1)
  (func (export "husk_hook_abi_v2"))
)
